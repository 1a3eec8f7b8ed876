//! Escaping of event data inserted into text that a destination parses as markup. Only a
//! template's literal text may carry markup; every value from an event is escaped for where
//! it lands, so data cannot ping a channel, mention a user or team, forge a link or break
//! out of a code span.

use std::borrow::Cow;

/// How the destination reads text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Markup {
    /// Taken as data (a JSON consumer, an identifier): inserted as it is.
    #[default]
    Plain,
    /// Slack mrkdwn: `<...>` is a control sequence (`<!channel>`, `<@U1>`, `<url|text>`).
    Slack,
    /// GitHub Flavored Markdown, where `@name` and `@org/team` notify people.
    GithubMarkdown,
}

impl Markup {
    /// `value` escaped for this destination; `in_code` says whether it lands inside a code
    /// span that the surrounding literal text opened.
    pub fn escape<'a>(self, value: &'a str, in_code: bool) -> Cow<'a, str> {
        match self {
            Markup::Plain => Cow::Borrowed(value),
            Markup::Slack => slack(value),
            Markup::GithubMarkdown => github(value, in_code),
        }
    }
}

/// Slack's three escapes: with `<` and `>` gone, no mention, channel ping or link can form,
/// and `&` must go first so that `&lt;` written by the data stays text.
pub fn slack(value: &str) -> Cow<'_, str> {
    if !value.contains(['&', '<', '>']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Backticks become a look-alike in both contexts, so a value can neither close a code span
/// the template opened nor open one of its own (CommonMark has no escape inside a code
/// span). Line breaks become spaces, so a value cannot start a block of its own. Outside a
/// code span, markdown punctuation is backslash-escaped and every `@` is followed by a
/// zero-width space: GitHub matches mentions after rendering, so `\@` would still notify,
/// while `@\u{200B}name` does not.
pub fn github(value: &str, in_code: bool) -> Cow<'_, str> {
    let special = |c: char| {
        matches!(c, '`' | '\r' | '\n')
            || (!in_code && matches!(c, '@' | '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '|' | '~' | '#' | '&'))
    };
    if !value.contains(special) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '`' => out.push('\u{02CB}'),
            '\r' | '\n' => out.push(' '),
            '@' if !in_code => out.push_str("@\u{200B}"),
            c if !in_code && special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether literal text leaves a code span open: an odd number of backticks so far.
pub fn opens_code(text: &str, open: bool) -> bool {
    open ^ (text.matches('`').count() % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_values_cannot_form_control_sequences() {
        assert_eq!(
            slack("x` <!channel> <https://evil.example|click>"),
            "x` &lt;!channel&gt; &lt;https://evil.example|click&gt;"
        );
        assert_eq!(slack("a &lt; b"), "a &amp;lt; b");
        assert!(matches!(slack("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn github_values_mention_no_one_and_stay_in_their_code_span() {
        assert_eq!(github("ping @octocat and @org/team", false), "ping @\u{200B}octocat and @\u{200B}org/team");
        assert_eq!(github("[click](https://evil.example)", false), "\\[click\\](https://evil.example)");
        assert_eq!(github("a` @b\n\n# x", true), "a\u{02CB} @b  # x");
        assert_eq!(github("<img src=x>", false), "\\<img src=x\\>");
        assert!(opens_code("New VM: `", false));
        assert!(opens_code("` (ID: `", true), "closed, then opened again");
        assert!(!opens_code("`", true));
    }
}
