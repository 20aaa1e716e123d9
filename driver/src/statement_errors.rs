//! Errors that say where: a job script's failing statement named by its
//! number, its line and its first line of text, and syntax errors in user
//! words (what was expected, what was found, line and column).
//!
//! ```text
//! error: statement 2 at line 3: SELECT n_nope FROM tpch.sf0_01.nation
//! caused by
//! Schema error: No field named n_nope. Valid fields are ...
//! ```
//!
//! Statements are located with the SQL tokenizer (which knows strings and
//! comments), the same way the parser splits a script at `;`. A job file
//! as editors write it is accepted: a UTF-8 byte-order mark is dropped
//! before parsing, and CRLF line ends are whitespace to the tokenizer.

use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
pub use minispark_planner::user_errors::user_error;

/// Where one statement of a script starts: its 1-based line and the text
/// of its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementPlace {
    pub line: u64,
    pub first_line: String,
}

/// Most characters of a statement's first line shown in an error.
const FIRST_LINE_CHARS: usize = 100;

/// A script without the UTF-8 byte-order mark editors put at its start.
pub fn strip_bom(script: &str) -> &str {
    script.strip_prefix('\u{feff}').unwrap_or(script)
}

/// Where each statement of `script` starts, in order; empty when the
/// script does not tokenize (then the parser reports the error).
pub fn statement_places(script: &str) -> Vec<StatementPlace> {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, script).tokenize_with_location() else {
        return vec![];
    };
    let lines: Vec<&str> = script.lines().collect();
    let mut places = vec![];
    let mut in_statement = false;
    for t in tokens {
        match t.token {
            Token::SemiColon => in_statement = false,
            Token::Whitespace(_) => {}
            Token::EOF => break,
            _ if in_statement => {}
            _ => {
                in_statement = true;
                let line = t.span.start.line;
                let column = t.span.start.column as usize;
                let text = lines
                    .get(line.saturating_sub(1) as usize)
                    .map(|l| l.chars().skip(column.saturating_sub(1)).collect::<String>())
                    .unwrap_or_default();
                let text = text.trim();
                let mut first_line: String = text.chars().take(FIRST_LINE_CHARS).collect();
                if text.chars().count() > FIRST_LINE_CHARS {
                    first_line.push_str(" ...");
                }
                places.push(StatementPlace { line, first_line });
            }
        }
    }
    places
}

/// `err` of statement `index` (0-based) of a script whose statements start
/// at `places`, with the statement named: "statement N at line L: <its
/// first line>". Without a place (a DataFrame's plan, say) only the
/// number is named, and only for scripts of several statements.
pub fn in_statement(
    err: DataFusionError,
    index: usize,
    places: &[StatementPlace],
) -> DataFusionError {
    let err = user_error(err);
    match places.get(index) {
        Some(place) => err.context(format!(
            "statement {} at line {}: {}",
            index + 1,
            place.line,
            place.first_line
        )),
        None if places.len() > 1 => err.context(format!("statement {}", index + 1)),
        None => err,
    }
}

/// A parser error in user words: "syntax error: Expected: ..., found: X at
/// Line: 2, Column: 1", and the nesting limit for statements the parser
/// found too deep.
pub fn syntax_error(err: DataFusionError, recursion_limit: usize) -> DataFusionError {
    match err {
        DataFusionError::SQL(e, _) => match *e {
            ParserError::ParserError(msg) | ParserError::TokenizerError(msg) => {
                DataFusionError::Plan(format!("syntax error: {msg}"))
            }
            ParserError::RecursionLimitExceeded => DataFusionError::Plan(format!(
                "the statement nests too deeply for the SQL parser: minispark parses \
                 expressions and queries nested up to its nesting limit of {recursion_limit} \
                 levels"
            )),
        },
        // DataFusion wraps some parser errors with a diagnostic.
        DataFusionError::Diagnostic(_, inner) => syntax_error(*inner, recursion_limit),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_found_past_comments_strings_and_crlf() {
        let script =
            "-- head\r\nSELECT 1;\r\n/* a ; b */ SELECT ';' AS s;  SELECT 3\r\n  FROM t;\r\n;\r\n";
        let places = statement_places(strip_bom(script));
        let lines: Vec<u64> = places.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 3]);
        assert_eq!(places[0].first_line, "SELECT 1;");
        assert_eq!(places[1].first_line, "SELECT ';' AS s;  SELECT 3");
        assert_eq!(places[2].first_line, "SELECT 3");
    }

    #[test]
    fn errors_name_the_statement() {
        let places = statement_places("SELECT 1;\nSELECT x\nFROM t;");
        let err = in_statement(DataFusionError::Plan("no x".into()), 1, &places);
        let text = err.to_string();
        assert!(
            text.starts_with("statement 2 at line 2: SELECT x\n"),
            "{text}"
        );
        assert!(text.contains("no x"), "{text}");
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(strip_bom("\u{feff}SELECT 1"), "SELECT 1");
        assert_eq!(strip_bom("SELECT 1"), "SELECT 1");
    }
}
