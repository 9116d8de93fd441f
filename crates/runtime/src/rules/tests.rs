use super::*;

/// A rule of `kind` between `min_length` and `max_length` characters.
const fn rule(kind: TextKind, min_length: usize, max_length: usize) -> Rule {
    Rule { text: kind, min_length, max_length, ..EMPTY }
}

#[test]
fn the_character_tables_are_unicodes() {
    for c in (0..=0x10_ffff_u32).filter_map(char::from_u32) {
        assert_eq!(within(c, WHITE_SPACE), c.is_whitespace(), "{}", c.escape_unicode());
        assert_eq!(within(c, CONTROL), c.is_control(), "{}", c.escape_unicode());
    }
}

struct Case {
    what: &'static str,
    value: &'static str,
    rule: Rule,
    /// The stored value, or `None` when refused.
    stored: Option<&'static str>,
}

#[test]
fn each_kind_takes_its_own_text() {
    let name = rule(TextKind::Name, 1, 10);
    let label = rule(TextKind::Name, 0, 10);
    let id = rule(TextKind::Id, 1, 0);
    let optional_id = rule(TextKind::Id, 0, 0);
    let prose = rule(TextKind::Prose, 0, 10);
    let password = rule(TextKind::Prose, 3, 10);
    let email = rule(TextKind::Email, 1, 30);
    let handle = rule(TextKind::Handle, 3, 5);
    #[rustfmt::skip]
    let cases = [
        Case { what: "a name", value: "Ærendil", rule: name, stored: Some("Ærendil") },
        Case { what: "a name with spaces around", value: "  Ada  ", rule: name, stored: Some("Ada") },
        Case { what: "spaces count as sent", value: "     Ada     ", rule: name, stored: None },
        Case { what: "an empty name", value: "", rule: name, stored: None },
        Case { what: "an empty label", value: "", rule: label, stored: Some("") },
        Case { what: "a blank label", value: "   ", rule: label, stored: None },
        Case { what: "a newline", value: "a\nb", rule: name, stored: None },
        Case { what: "a tab", value: "a\tb", rule: name, stored: None },
        Case { what: "DEL", value: "a\u{7f}", rule: name, stored: None },
        Case { what: "NEL, a C1 control", value: "a\u{85}b", rule: name, stored: None },
        Case { what: "a line separator", value: "a\u{2028}b", rule: name, stored: None },
        Case { what: "a right-to-left override", value: "abc\u{202e}", rule: name, stored: None },
        Case { what: "a first-strong isolate", value: "\u{2068}abc", rule: name, stored: None },
        Case { what: "only zero-width spaces", value: "\u{200b}\u{200b}", rule: name, stored: None },
        Case { what: "only a byte-order mark and a no-break space", value: "\u{feff}\u{a0}", rule: name, stored: None },
        Case { what: "a joiner inside a name", value: "a\u{200d}b", rule: name, stored: Some("a\u{200d}b") },
        Case { what: "an id", value: "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c", rule: id, stored: Some("0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c") },
        Case { what: "an id in capitals", value: "0190F2C4-7E4B-7CC0-9B1A-3F1D2E5A6B7C", rule: id, stored: Some("0190F2C4-7E4B-7CC0-9B1A-3F1D2E5A6B7C") },
        Case { what: "an id in braces", value: "{0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c}", rule: id, stored: None },
        Case { what: "an id as a URN", value: "urn:uuid:0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c", rule: id, stored: None },
        Case { what: "an id without dashes", value: "0190f2c47e4b7cc09b1a3f1d2e5a6b7c", rule: id, stored: None },
        Case { what: "an id with a dash moved", value: "0190f2c47-e4b-7cc0-9b1a-3f1d2e5a6b7c", rule: id, stored: None },
        Case { what: "no id where one is optional", value: "", rule: optional_id, stored: Some("") },
        Case { what: "no id where one is required", value: "", rule: id, stored: None },
        Case { what: "prose with newlines", value: "a\n\tb", rule: prose, stored: Some("a\n\tb") },
        Case { what: "prose with NUL", value: "a\0b", rule: prose, stored: None },
        Case { what: "a password of spaces", value: "     ", rule: password, stored: None },
        Case { what: "a password with spaces", value: " a b ", rule: password, stored: Some(" a b ") },
        Case { what: "an email", value: "ada@example.com", rule: email, stored: Some("ada@example.com") },
        Case { what: "an email with a space", value: "ada@example.com ", rule: email, stored: None },
        Case { what: "an email without a dot", value: "ada@localhost", rule: email, stored: None },
        Case { what: "an email with two @", value: "a@b@example.com", rule: email, stored: None },
        Case { what: "an email ending with a dot", value: "ada@example.", rule: email, stored: None },
        Case { what: "a handle", value: "ada_1", rule: handle, stored: Some("ada_1") },
        Case { what: "a handle too long", value: "ada_12", rule: handle, stored: None },
        Case { what: "a handle with a dot", value: "a.da", rule: handle, stored: None },
    ];
    for case in cases {
        assert_eq!(text(case.value, &case.rule).ok().as_deref(), case.stored, "{}: {:?}", case.what, case.value);
    }
}

#[test]
fn lists_keys_and_integers_are_checked() {
    let ids = Rule { min_items: 1, max_items: 2, unique_items: true, ..rule(TextKind::Id, 1, 0) };
    let one = "0190f2c4-7e4b-7cc0-9b1a-3f1d2e5a6b7c".to_owned();
    let problems = |items: &[String]| {
        let mut violations = FieldViolations::new();
        let checked = ids.check_list("ids", items, &mut violations);
        let status = violations.finish().err();
        let named = status.map(|s| s.message().to_owned()).unwrap_or_default();
        (checked.is_some(), named)
    };
    assert_eq!(problems(std::slice::from_ref(&one)), (true, String::new()));
    assert!(problems(&[]).1.starts_with("ids: must hold at least 1"));
    assert!(problems(&[one.clone(), one.clone()]).1.starts_with("ids[1]: "), "the second is the one twice");
    assert!(problems(&["x".into(), one.clone()]).1.starts_with("ids[0]: "));
    assert!(problems(&[one.clone(), "x".into(), one]).1.starts_with("ids: may hold at most 2"));
    let map = Rule { max_key_length: 3, ..EMPTY };
    assert_eq!(map.check_key(" ab").as_deref(), Ok("ab"));
    assert!(map.check_key("abcd").is_err() && map.check_key(" ").is_err() && map.check_key("a\nb").is_err());
    let size = Rule { minimum: Some(0), maximum: Some(300), ..EMPTY };
    assert_eq!(size.check_int(0), Ok(0));
    assert!(size.check_int(-1).is_err() && size.check_int(301).is_err());
}

/// Characters from every table and each side of its edges, and plain ones.
fn alphabet() -> Vec<char> {
    let mut chars: Vec<char> = "aZ09_-.@\" =,".chars().collect();
    for &(low, high) in [CONTROL, NOT_IN_NAMES, WHITE_SPACE, INVISIBLE].iter().copied().flatten() {
        for c in [u32::from(low).saturating_sub(1), u32::from(low), u32::from(high), u32::from(high) + 1] {
            chars.extend(char::from_u32(c));
        }
    }
    chars.sort_unstable();
    chars.dedup();
    chars
}

/// Every string of up to three characters of `alphabet`, and longer ones drawn from it.
fn samples(alphabet: &[char]) -> Vec<String> {
    let mut out = vec![String::new()];
    for &a in alphabet {
        out.push(a.to_string());
        for &b in alphabet {
            out.push([a, b].iter().collect());
        }
    }
    // A small deterministic generator, for longer strings.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let length = 3 + (state % 8) as usize;
        let text = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        out.push(text);
    }
    out
}

#[test]
fn each_published_pattern_takes_exactly_what_its_check_takes() {
    let samples = samples(&alphabet());
    for (field, rule) in
        ALL.iter().filter(|(_, r)| !matches!(r.text, TextKind::Unspecified | TextKind::Filter | TextKind::FieldMask))
    {
        let pattern = pattern(rule).unwrap_or_else(|| panic!("{field} has no pattern"));
        let regex = regex::Regex::new(&pattern).unwrap_or_else(|e| panic!("{field}: {pattern}: {e}"));
        for sample in &samples {
            let length = sample.chars().count();
            let lengths_allow = length >= rule.min_length && (rule.max_length == 0 || length <= rule.max_length);
            let published = lengths_allow && regex.is_match(sample);
            assert_eq!(published, text(sample, rule).is_ok(), "{field} on {sample:?} (pattern {pattern})");
        }
    }
}

#[test]
fn masks_and_filters_have_patterns_of_their_names() {
    let mask = Rule { paths: &["title", "entity_ids"], ..rule(TextKind::FieldMask, 0, 0) };
    let regex = regex::Regex::new(&pattern(&mask).unwrap()).unwrap();
    for good in ["", "title", "entityIds", "entity_ids,title", "title,title"] {
        assert!(regex.is_match(good), "{good:?}");
    }
    for bad in ["owner_id", "title,", ",title", "title, entityIds", "*", "*,title"] {
        assert!(!regex.is_match(bad), "{bad:?}");
    }
}
