//! Every rule's class follows from the words of the sentence it quotes.
//!
//! - Each quoted sentence (a quote of several joins them with ` … `) is in the vendored spec
//!   (`harness/spec/distribution-spec.md`) verbatim, whitespace collapsed; quotes in
//!   parentheses are ocidiff's own (the catalog extension, the model) and exempt.
//! - A rule's `level` is the strongest RFC 2119 keyword of the quote that binds the registry
//!   (a keyword whose subject is the client, "clients MUST ...", binds nobody ocidiff tests).
//! - `violation` needs level MUST; SHOULD / MAY / none give at most a variation (or an
//!   unsupported feature).

use ocidiff::compare::{Class, Level, RULES};

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn spec_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/distribution-spec.md");
    collapse(&std::fs::read_to_string(path).expect("vendored spec"))
}

/// The keywords of a sentence with whether each binds the client (its subject, within the
/// three words before it, is "client" / "clients").
fn keywords(sentence: &str) -> Vec<(Level, bool)> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphabetic());
        let level = match w {
            "MUST" | "REQUIRED" | "SHALL" => Level::Must,
            "SHOULD" | "RECOMMENDED" => Level::Should,
            "MAY" | "OPTIONAL" => Level::May,
            _ => continue,
        };
        let before = &words[i.saturating_sub(3)..i];
        let client = before.iter().any(|b| {
            let b = b
                .trim_matches(|c: char| !c.is_ascii_alphabetic())
                .to_ascii_lowercase();
            b == "client" || b == "clients"
        });
        out.push((level, client));
    }
    out
}

fn strongest(levels: impl Iterator<Item = Level>) -> Level {
    // `Level` orders Must < Should < May < None.
    levels.min().unwrap_or(Level::None)
}

#[test]
fn keyword_detection() {
    assert_eq!(
        keywords("If a manifest includes a `mediaType` field, clients MUST set the `Content-Type` header"),
        vec![(Level::Must, true)]
    );
    assert_eq!(
        keywords("Registries SHOULD return a `202` and clients SHOULD proceed"),
        vec![(Level::Should, false), (Level::Should, true)]
    );
    assert_eq!(
        strongest([Level::May, Level::Must].into_iter()),
        Level::Must
    );
}

#[test]
fn every_quote_is_in_the_spec_verbatim() {
    let spec = spec_text();
    let mut missing = Vec::new();
    for r in RULES {
        if r.spec.starts_with('(') {
            continue;
        }
        for sentence in r.spec.split(" … ") {
            if !spec.contains(&collapse(sentence)) {
                missing.push(format!("{}: {sentence:?}", r.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "quotes not in the spec:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_class_is_supported_by_its_keyword() {
    let mut wrong = Vec::new();
    for r in RULES {
        let kws: Vec<(Level, bool)> = r.spec.split(" … ").flat_map(keywords).collect();
        let registry = strongest(kws.iter().filter(|(_, client)| !client).map(|(l, _)| *l));
        if r.level != registry {
            wrong.push(format!(
                "{}: level {:?}, but the quote's strongest registry keyword is {:?}",
                r.id, r.level, registry
            ));
        }
        if r.class == Class::Violation && registry != Level::Must {
            wrong.push(format!(
                "{}: a violation needs a registry MUST; the quote has {:?}: {:?}",
                r.id, registry, r.spec
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn rule_ids_are_unique_and_named_by_endpoint() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.id), "duplicate rule {}", r.id);
        assert!(!r.spec.is_empty(), "{}: no quote", r.id);
    }
}
