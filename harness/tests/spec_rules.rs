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

/// Registry MUST sentences no rule cites, each with why: the client's obligations (the
/// harness sends what they say, or deliberately does not, and judges the registry's answer
/// by the registry's own MUSTs), and what a client of a running registry cannot observe.
const NOT_RULES: &[(&str, &str)] = &[
    ("The key words \"MUST\"", "notational conventions"),
    ("All registries conforming to this specification MUST support", "a conformance claim: what the conformance page sums up"),
    ("A registry claiming conformance with one of these specification categories MUST implement all APIs", "a conformance claim: what the conformance page sums up"),
    ("`<tag-or-digest>` MUST be either (a) the digest", "what a client sends"),
    ("The `<tag-or-digest>` MUST NOT be in any other format", "what a client sends (an invalid one is a client error)"),
    ("`<name>` MUST match the following regular expression", "what a client sends (an invalid name is a client error)"),
    ("`<tag-or-digest>` as a tag MUST be at most 128 characters", "what a client sends"),
    ("The `Content-Length` header MUST match the blob's actual content length", "what a client sends"),
    ("Likewise, the `<digest>` MUST match the blob's digest", "what a client sends (a wrong one is a client error)"),
    ("the post request MUST include the following header", "what a client sends"),
    ("MUST be inclusive on both ends", "what a client sends"),
    ("The first chunk's range MUST begin with `0`", "what a client sends"),
    ("It MUST match the following regular expression", "the Content-Range a client sends"),
    ("Chunks MUST be uploaded in order", "what a client sends (the registry's answer: end-5/out-of-order-416)"),
    ("the session MUST be closed with a `PUT` request", "what a client does"),
    ("The closing `PUT` request MUST include the `<digest>`", "what a client sends"),
    ("`<name>` is the namespace of the repository, and the `<tag-or-digest>` MUST be either", "what a client sends"),
    ("The uploaded manifest MUST reference any blobs", "what a client uploads"),
    ("The value of the `artifactType` MUST be set to the `artifactType` value in the pushed manifest", "the client's referrers-tag-schema index"),
    ("If the `artifactType` is empty or missing in a pushed image manifest", "the client's referrers-tag-schema index"),
    ("All annotations from the pushed manifest MUST be copied to this descriptor", "the client's referrers-tag-schema index"),
    ("`<tagname>` MUST NOT be a numerical index", "the `last` value a client sends"),
    ("If multiple filters are applied", "the spec defines one filter (artifactType): nothing can apply several"),
    ("client fallback procedures that MUST be implemented", "client fallback"),
    ("A client querying the [referrers API]", "client fallback"),
    ("The Truncated Algorithm associated with a Content Digest MUST match", "the client's referrers tag name"),
    ("The Truncated Encoded section associated with a Content Digest MUST match", "the client's referrers tag name"),
    ("Registries MUST include preexisting image manifests that are listed in an image index tagged with the [referrers tag schema]", "a registry enabling the referrers API over existing content: not observable by a client of a running registry"),
    ("clients SHOULD follow such redirects, and MUST NOT forward `Authorization` headers", "what a client does (the executor follows redirects so)"),
];

/// Issue 10: every registry MUST of the spec is cited by a rule, or listed above with why.
#[test]
fn every_registry_must_is_cited_by_a_rule() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/distribution-spec.md"
    ))
    .unwrap();
    let cited: Vec<String> = RULES
        .iter()
        .flat_map(|r| r.spec.split(" … "))
        .map(collapse)
        .filter(|s| s.len() > 20)
        .collect();
    let musts = registry_must_sentences(&spec);
    assert!(
        musts.len() > 60,
        "only {} MUST sentences found",
        musts.len()
    );
    let mut uncited = Vec::new();
    for s in &musts {
        let by_rule = cited.iter().any(|c| s.contains(c.as_str()));
        let listed = NOT_RULES.iter().any(|(frag, _)| s.contains(frag));
        if !by_rule && !listed {
            uncited.push(s.chars().take(200).collect::<String>());
        }
    }
    let listed = musts
        .iter()
        .filter(|s| NOT_RULES.iter().any(|(frag, _)| s.contains(frag)))
        .count();
    println!(
        "{} registry MUST sentences: {} cited by rules, {} listed as not the registry's / not observable",
        musts.len(),
        musts.len() - listed - uncited.len(),
        listed
    );
    assert!(
        uncited.is_empty(),
        "{} registry MUST sentences no rule cites:\n- {}",
        uncited.len(),
        uncited.join("\n- ")
    );
    // The list stays short and true: every entry still matches a sentence.
    for (frag, why) in NOT_RULES {
        assert!(
            musts.iter().any(|s| s.contains(frag)),
            "stale entry ({why}): {frag:?}"
        );
    }
}
