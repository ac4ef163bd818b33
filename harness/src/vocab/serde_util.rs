//! Serde helpers for values TOML cannot hold directly.

/// Whether `v` is its type's default (for `skip_serializing_if`).
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `u64` as a TOML-safe value: an integer when it fits in `i64`, otherwise a decimal string.
/// Deserializes from either form.
pub mod serde_u64 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*v) {
            Ok(i) => s.serialize_i64(i),
            Err(_) => s.serialize_str(&v.to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Int(u64),
            Str(String),
        }
        match Repr::deserialize(d)? {
            Repr::Int(v) => Ok(v),
            Repr::Str(s) => s
                .parse()
                .map_err(|_| de::Error::custom(format!("invalid u64 {s:?}"))),
        }
    }
}

/// `Option<(u32, Option<u32>)>` as `[start]` / `[start, end]` (TOML cannot hold a null).
pub mod serde_range {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        v: &Option<(u32, Option<u32>)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some((a, None)) => vec![*a].serialize(s),
            Some((a, Some(b))) => vec![*a, *b].serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(u32, Option<u32>)>, D::Error> {
        let v: Option<Vec<Option<u32>>> = Option::deserialize(d)?;
        match v.as_deref() {
            None => Ok(None),
            Some([Some(a)]) | Some([Some(a), None]) => Ok(Some((*a, None))),
            Some([Some(a), Some(b)]) => Ok(Some((*a, Some(*b)))),
            Some(other) => Err(de::Error::custom(format!(
                "range must be [start] or [start, end], got {other:?}"
            ))),
        }
    }
}
