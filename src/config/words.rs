//! Splitting a directive's raw arguments into words, the way Apache's `ap_getword_conf` does:
//! whitespace separates words; a word may be wrapped in `"` or `'`, inside which a backslash
//! escapes the quote character.

/// Splits `args` into words.
pub fn split_words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return words;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    break;
                } else {
                    word.push(c);
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Splits `name=value`; a word with no `=` is an error naming the directive.
pub fn split_option<'a>(directive: &str, word: &'a str) -> Result<(&'a str, &'a str), String> {
    word.split_once('=')
        .ok_or_else(|| format!("{directive}: '{word}' is not an option of the form name=value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(split_words("  a  b\tc "), ["a", "b", "c"]);
        assert_eq!(
            split_words(r#"/x "/srv/my app/wsgi.py" p=1"#),
            ["/x", "/srv/my app/wsgi.py", "p=1"]
        );
        assert_eq!(split_words(r#"'it\'s' "q\"q""#), ["it's", "q\"q"]);
        assert!(split_words("   ").is_empty());
    }

    #[test]
    fn options() {
        assert_eq!(split_option("D", "a=b=c"), Ok(("a", "b=c")));
        assert!(split_option("WSGIDaemonProcess", "bare")
            .unwrap_err()
            .contains("WSGIDaemonProcess"));
    }
}
