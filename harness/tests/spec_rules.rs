//! Every rule's class follows from the words of the sentence it quotes, in every spec version
//! ocidiff judges by (`1.0` = v1.0.1, `1.1` = v1.1.1, `1.1+dev` = main; `harness/spec/`).
//!
//! - Each quoted sentence of a rule as a version reads it (`rule_in`; a quote of several joins
//!   them with ` … `) is in that version's text verbatim, whitespace collapsed; quotes in
//!   parentheses are ocidiff's own (the catalog extension, the model) and exempt.
//! - A rule's `level` is the strongest RFC 2119 keyword of the quote that binds the registry
//!   (a keyword whose subject is the client, "clients MUST ...", binds nobody ocidiff tests).
//! - `violation` needs level MUST; SHOULD / MAY / none give at most a variation (or an
//!   unsupported feature).

use ocidiff::compare::{rule_in, Class, Level, SpecVersion, RULES};

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of one version, as vendored in `harness/spec/`.
fn raw_text(v: SpecVersion) -> String {
    let path = format!("{}/spec/{}", env!("CARGO_MANIFEST_DIR"), v.file());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn spec_text(v: SpecVersion) -> String {
    collapse(&raw_text(v))
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
fn every_quote_is_in_its_versions_text_verbatim() {
    let mut missing = Vec::new();
    for v in SpecVersion::ALL {
        let spec = spec_text(v);
        for r in RULES {
            let vr = rule_in(r.id, v);
            if !vr.defined || vr.spec.starts_with('(') {
                continue;
            }
            for sentence in vr.spec.split(" … ") {
                if !spec.contains(&collapse(sentence)) {
                    missing.push(format!("{v} {}: {sentence:?}", r.id));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "quotes not in their version's text:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_class_is_supported_by_its_keyword_in_every_version() {
    let mut wrong = Vec::new();
    for v in SpecVersion::ALL {
        for r in RULES {
            let vr = rule_in(r.id, v);
            if !vr.defined {
                if vr.class == Class::Violation {
                    wrong.push(format!(
                        "{v} {}: a violation of a behaviour {v} does not define",
                        r.id
                    ));
                }
                continue;
            }
            let kws: Vec<(Level, bool)> = vr.spec.split(" … ").flat_map(keywords).collect();
            let registry = strongest(kws.iter().filter(|(_, client)| !client).map(|(l, _)| *l));
            if vr.level != registry {
                wrong.push(format!(
                    "{v} {}: level {:?}, but the quote's strongest registry keyword is {:?}",
                    r.id, vr.level, registry
                ));
            }
            if vr.class == Class::Violation && registry != Level::Must {
                wrong.push(format!(
                    "{v} {}: a violation needs a registry MUST; the quote has {:?}: {:?}",
                    r.id, registry, vr.spec
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The versions move only one way where it matters: what v1.1.1 makes a SHOULD and main a
/// MUST is a variation under 1.1 and a violation under 1.1+dev (issue 25's examples).
#[test]
fn version_dependent_rules_follow_their_texts() {
    for (id, v1_0, v1_1, dev) in [
        (
            "end-2/get-digest",
            Class::Variation,
            Class::Variation,
            Class::Violation,
        ),
        (
            "end-3/digest",
            Class::Variation,
            Class::Variation,
            Class::Violation,
        ),
        (
            "end-6/out-of-order-416",
            Class::Variation,
            Class::Variation,
            Class::Violation,
        ),
        (
            "end-2/get-digest-value",
            Class::Violation,
            Class::Violation,
            Class::Violation,
        ),
        (
            "end-5/out-of-order-416",
            Class::Violation,
            Class::Violation,
            Class::Violation,
        ),
        (
            "end-12a/not-404",
            Class::Variation,
            Class::Violation,
            Class::Violation,
        ),
    ] {
        let got = (
            rule_in(id, SpecVersion::V1_0).class,
            rule_in(id, SpecVersion::V1_1).class,
            rule_in(id, SpecVersion::V1_1Dev).class,
        );
        assert_eq!(got, (v1_0, v1_1, dev), "{id}");
    }
    assert!(!rule_in("end-6/out-of-order-416", SpecVersion::V1_1).defined);
    assert!(rule_in("end-6/out-of-order-416", SpecVersion::V1_1)
        .quote()
        .contains("v1.1.1"));
    assert!(rule_in("end-2/get-digest", SpecVersion::V1_1)
        .spec
        .contains("SHOULD contain the digest"));
}

#[test]
fn every_older_entry_names_a_rule_once() {
    let mut seen = std::collections::BTreeSet::new();
    for (id, v, _) in ocidiff::compare::rule_versions::OLDER {
        assert!(
            RULES.iter().any(|r| r.id == *id),
            "rule_versions names an unknown rule {id}"
        );
        assert!(*v != SpecVersion::V1_1Dev, "{id}: main is rules.rs itself");
        assert!(seen.insert((*id, *v)), "{id} {v} twice");
    }
}

#[test]
fn rule_ids_are_unique_and_named_by_endpoint() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.id), "duplicate rule {}", r.id);
        assert!(!r.spec.is_empty(), "{}: no quote", r.id);
    }
}

/// The spec's sentences with a MUST / MUST NOT / REQUIRED / SHALL that binds the registry
/// (code blocks dropped, whitespace collapsed, split at sentence ends).
fn registry_must_sentences(spec: &str) -> Vec<String> {
    let mut text = String::new();
    let mut in_code = false;
    for line in spec.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            text.push_str(line);
            text.push('\n');
        }
    }
    let text = collapse(&text);
    let split = regex::Regex::new(r"([.:;])\s+([A-Z`\[(*])").unwrap();
    let marked = split.replace_all(&text, "$1\u{1}$2");
    marked
        .split('\u{1}')
        .filter(|s| {
            keywords(s)
                .iter()
                .any(|(level, client)| *level == Level::Must && !client)
        })
        .map(str::to_string)
        .collect()
}

/// Every registry MUST of every version is cited by a rule as that version reads it, or
/// listed (`compare::not_rules::NOT_RULES`) with why.
#[test]
fn every_registry_must_of_every_version_is_cited_by_a_rule() {
    use ocidiff::compare::not_rules::NOT_RULES;
    for v in SpecVersion::ALL {
        let cited: Vec<String> = RULES
            .iter()
            .map(|r| rule_in(r.id, v))
            .filter(|vr| vr.defined)
            .flat_map(|vr| vr.spec.split(" … "))
            .map(collapse)
            .filter(|s| s.len() > 20)
            .collect();
        let listed_for_v: Vec<(&str, &str)> = NOT_RULES
            .iter()
            .filter(|(lv, _, _)| *lv == v)
            .map(|(_, frag, why)| (*frag, *why))
            .collect();
        let musts = registry_must_sentences(&raw_text(v));
        assert!(
            musts.len() > 40,
            "{v}: only {} MUST sentences found",
            musts.len()
        );
        let mut uncited = Vec::new();
        for s in &musts {
            let by_rule = cited.iter().any(|c| s.contains(c.as_str()));
            let listed = listed_for_v.iter().any(|(frag, _)| s.contains(frag));
            if !by_rule && !listed {
                uncited.push(s.chars().take(200).collect::<String>());
            }
        }
        let listed = musts
            .iter()
            .filter(|s| listed_for_v.iter().any(|(frag, _)| s.contains(frag)))
            .count();
        println!(
            "{v}: {} registry MUST sentences: {} cited by rules, {} listed as not the registry's / not observable",
            musts.len(),
            musts.len() - listed - uncited.len(),
            listed
        );
        assert!(
            uncited.is_empty(),
            "{v}: {} registry MUST sentences no rule cites:\n- {}",
            uncited.len(),
            uncited.join("\n- ")
        );
        // The list stays short and true: every entry still matches a sentence.
        for (frag, why) in &listed_for_v {
            assert!(
                musts.iter().any(|s| s.contains(frag)),
                "{v}: stale entry ({why}): {frag:?}"
            );
        }
    }
}
