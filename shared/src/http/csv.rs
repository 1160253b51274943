//! RFC 4180 CSV for exports: CRLF row ends, fields quoted only when they must be,
//! and text guarded against spreadsheet formula injection (OWASP "CSV Injection").
//!
//! The guard prefixes `'` to text that a spreadsheet would otherwise run as a
//! formula. It is one-way: `parse` returns the guarded text as written, because a
//! reader cannot tell a guard from an apostrophe that was really there.

use http::{header, HeaderValue};
use lambda_http::{Body, Response};

/// A CSV download: an attachment named `{name}.csv`, never cached, never sniffed as
/// another type (a cell holds whatever a user typed), and the next page's cursor in
/// `x-next-cursor` when there is one. Every CSV route answers through this one.
pub fn csv_response(body: String, name: &str, next_cursor: Option<String>) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Some(cursor) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert("x-next-cursor", cursor);
    }
    response
}

/// One cell: text is quoted as needed and guarded against spreadsheet formula injection; numbers are written as is.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A figure with decimals (a rate); written as Rust prints it, never guarded:
    /// a number cannot be a formula.
    Float(f64),
    Empty,
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Cell {
    fn from(number: i64) -> Self {
        Self::Int(number)
    }
}

impl From<Option<String>> for Cell {
    fn from(text: Option<String>) -> Self {
        text.map_or(Self::Empty, Self::Text)
    }
}

impl From<Option<i64>> for Cell {
    fn from(number: Option<i64>) -> Self {
        number.map_or(Self::Empty, Self::Int)
    }
}

/// Builds a CSV document row by row; every row has the header's width.
#[derive(Debug)]
pub struct CsvWriter {
    out: String,
    columns: usize,
}

impl CsvWriter {
    /// Starts the document with the header row.
    pub fn new(header: &[&str]) -> Self {
        debug_assert!(!header.is_empty(), "a CSV export needs at least one column");
        let mut writer = Self { out: String::new(), columns: header.len() };
        writer.write_record(header.iter().map(|name| Cell::from(*name)));
        writer
    }

    /// Appends one row. A wrong cell count is a bug in the caller, so debug builds panic; release
    /// builds pad with empty cells or drop the extras so the file still lines up with its header.
    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns, "CSV row width must match the header");
        let columns = self.columns;
        self.write_record(cells.into_iter().chain(std::iter::repeat(Cell::Empty)).take(columns));
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn write_record(&mut self, cells: impl Iterator<Item = Cell>) {
        for (index, cell) in cells.enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            match cell {
                Cell::Text(text) => write_text(&mut self.out, &text),
                Cell::Int(number) => self.out.push_str(&number.to_string()),
                Cell::Float(number) if number.is_finite() => self.out.push_str(&number.to_string()),
                Cell::Float(_) => {}
                Cell::Empty => {}
            }
        }
        self.out.push_str("\r\n");
    }
}

/// Characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn write_text(out: &mut String, text: &str) {
    let guarded = text.starts_with(FORMULA_TRIGGERS);
    // Leading or trailing spaces are quoted because many readers trim them from bare fields.
    let quoted = text.contains([',', '"', '\r', '\n']) || text.starts_with(' ') || text.ends_with(' ');
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// Parses CSV text written by CsvWriter (or any RFC 4180 text) back into rows of strings; used by tests and
/// by clients' round-trip checks.
///
/// Rows may end with CRLF or a bare LF, and the last row may have no line end. An
/// empty line is a row with one empty field; empty text is no rows. A CR outside
/// quotes that does not start a CRLF is refused, as RFC 4180 allows it only quoted.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    if text.is_empty() {
        return Ok(rows);
    }
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;

    loop {
        if chars.next_if_eq(&'"').is_some() {
            let opened_on = line;
            loop {
                match chars.next() {
                    None => return Err(format!("line {opened_on}: unterminated quoted field")),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => {
                        if c == '\n' {
                            line += 1;
                        }
                        field.push(c);
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !matches!(*c, ',' | '\r' | '\n')) {
                if c == '"' {
                    return Err(format!("line {line}: quote inside an unquoted field"));
                }
                field.push(c);
            }
        }
        row.push(std::mem::take(&mut field));

        match chars.next() {
            None => {
                rows.push(row);
                return Ok(rows);
            }
            Some(',') => {}
            Some(c @ ('\r' | '\n')) => {
                if c == '\r' && chars.next_if_eq(&'\n').is_none() {
                    return Err(format!("line {line}: carriage return outside quotes not followed by a line feed"));
                }
                rows.push(std::mem::take(&mut row));
                line += 1;
                if chars.peek().is_none() {
                    return Ok(rows);
                }
            }
            Some(c) => return Err(format!("line {line}: unexpected {c:?} after a closing quote")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_download_is_an_uncached_unsniffed_attachment_with_its_cursor() {
        let r = csv_response("a\r\n".into(), "revenue", Some("abc".into()));
        let h = r.headers();
        assert_eq!(h["content-type"], "text/csv; charset=utf-8");
        assert_eq!(h["content-disposition"], "attachment; filename=\"revenue.csv\"");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-next-cursor"], "abc");
        assert!(!csv_response(String::new(), "x", None).headers().contains_key("x-next-cursor"));
    }

    fn single_cell(cell: Cell) -> String {
        let mut writer = CsvWriter::new(&["value"]);
        writer.row(vec![cell]);
        let text = writer.finish();
        text.strip_prefix("value\r\n").unwrap().strip_suffix("\r\n").unwrap().to_string()
    }

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter().map(|row| row.iter().map(|field| field.to_string()).collect()).collect()
    }

    #[test]
    fn header_is_the_first_row() {
        assert_eq!(CsvWriter::new(&["partnerId", "companyName", "mrr"]).finish(), "partnerId,companyName,mrr\r\n");
    }

    #[test]
    fn rows_end_with_crlf() {
        let mut writer = CsvWriter::new(&["id", "mrr"]);
        writer.row(vec!["a".into(), 1200.into()]);
        writer.row(vec!["b".into(), 0.into()]);
        assert_eq!(writer.finish(), "id,mrr\r\na,1200\r\nb,0\r\n");
    }

    #[test]
    fn plain_text_is_not_quoted() {
        assert_eq!(single_cell("Acme Corp".into()), "Acme Corp");
        assert_eq!(single_cell("it's fine".into()), "it's fine");
    }

    #[test]
    fn fields_that_need_it_are_quoted() {
        assert_eq!(single_cell("Acme, Inc.".into()), "\"Acme, Inc.\"");
        assert_eq!(single_cell("say \"hi\"".into()), "\"say \"\"hi\"\"\"");
        assert_eq!(single_cell("line one\nline two".into()), "\"line one\nline two\"");
        assert_eq!(single_cell("line one\r\nline two".into()), "\"line one\r\nline two\"");
        assert_eq!(single_cell("a\rb".into()), "\"a\rb\"");
        assert_eq!(single_cell(" padded".into()), "\" padded\"");
        assert_eq!(single_cell("padded ".into()), "\"padded \"");
        assert_eq!(single_cell("\"".into()), "\"\"\"\"");
    }

    #[test]
    fn empty_cells_and_missing_values_are_empty_fields() {
        let mut writer = CsvWriter::new(&["a", "b", "c", "d", "e"]);
        writer.row(vec![Cell::Empty, None::<String>.into(), None::<i64>.into(), "".into(), Some(7_i64).into()]);
        assert_eq!(writer.finish(), "a,b,c,d,e\r\n,,,,7\r\n");
    }

    #[test]
    fn conversions_into_cells() {
        assert_eq!(Cell::from("x"), Cell::Text("x".to_string()));
        assert_eq!(Cell::from("x".to_string()), Cell::Text("x".to_string()));
        assert_eq!(Cell::from(-3_i64), Cell::Int(-3));
        assert_eq!(Cell::from(Some("x".to_string())), Cell::Text("x".to_string()));
        assert_eq!(Cell::from(None::<String>), Cell::Empty);
        assert_eq!(Cell::from(Some(4_i64)), Cell::Int(4));
        assert_eq!(Cell::from(None::<i64>), Cell::Empty);
    }

    #[test]
    fn text_that_looks_like_a_formula_is_guarded() {
        assert_eq!(single_cell("=SUM(A1:A9)".into()), "'=SUM(A1:A9)");
        assert_eq!(single_cell("+1 555 0100".into()), "'+1 555 0100");
        assert_eq!(single_cell("-2+3".into()), "'-2+3");
        assert_eq!(single_cell("@cmd".into()), "'@cmd");
        assert_eq!(single_cell("\tindent".into()), "'\tindent");
        // CR also forces quoting; the guard goes inside the quotes.
        assert_eq!(single_cell("\r=1".into()), "\"'\r=1\"");
    }

    #[test]
    fn guard_and_quoting_combine() {
        assert_eq!(single_cell("=HYPERLINK(\"http://x\",\"y\")".into()), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(single_cell("-a ".into()), "\"'-a \"");
    }

    #[test]
    fn guard_only_looks_at_the_first_character() {
        assert_eq!(single_cell("a=b".into()), "a=b");
        assert_eq!(single_cell("name@example".into()), "name@example");
        assert_eq!(single_cell("'already quoted".into()), "'already quoted");
    }

    #[test]
    fn numbers_are_never_guarded() {
        assert_eq!(single_cell((-500).into()), "-500");
        assert_eq!(single_cell(i64::MIN.into()), "-9223372036854775808");
        assert_eq!(single_cell(Some(-1_i64).into()), "-1");
        // The same digits as text are guarded: text is where user input lives.
        assert_eq!(single_cell("-500".into()), "'-500");
    }

    #[test]
    fn header_names_are_written_like_text() {
        assert_eq!(CsvWriter::new(&["a,b", "=c"]).finish(), "\"a,b\",'=c\r\n");
    }

    #[test]
    fn awkward_values_round_trip() {
        let awkward = [
            "plain",
            "",
            "comma, inside",
            "\"quoted\"",
            "\"",
            "\"\"",
            "multi\nline",
            "windows\r\nline",
            "lone\rcarriage",
            " leading space",
            "trailing space ",
            "   ",
            "naïve café — ünïcödé 日本語 🚀",
            ",",
            "\n",
            "'apostrophe",
        ];
        let mut writer = CsvWriter::new(&["id", "value", "amount"]);
        for (index, value) in awkward.iter().enumerate() {
            writer.row(vec![Cell::from(index.to_string()), Cell::from(*value), Cell::Int(-(index as i64))]);
        }
        let parsed = parse(&writer.finish()).unwrap();

        assert_eq!(parsed[0], ["id", "value", "amount"]);
        assert_eq!(parsed.len(), awkward.len() + 1);
        for (index, value) in awkward.iter().enumerate() {
            assert_eq!(parsed[index + 1], [index.to_string(), value.to_string(), (-(index as i64)).to_string()]);
        }
    }

    #[test]
    fn guarded_values_round_trip_with_their_guard() {
        let mut writer = CsvWriter::new(&["value"]);
        for value in ["=1+1", "-5", "@x", "+y", "\tz", "\rw", "=a,b"] {
            writer.row(vec![value.into()]);
        }
        assert_eq!(
            parse(&writer.finish()).unwrap(),
            rows(&[&["value"], &["'=1+1"], &["'-5"], &["'@x"], &["'+y"], &["'\tz"], &["'\rw"], &["'=a,b"]])
        );
    }

    #[test]
    fn single_empty_column_round_trips() {
        let mut writer = CsvWriter::new(&["note"]);
        writer.row(vec![Cell::Empty]);
        writer.row(vec!["x".into()]);
        assert_eq!(parse(&writer.finish()).unwrap(), rows(&[&["note"], &[""], &["x"]]));
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "CSV row width must match the header")]
    fn wrong_width_panics_in_debug_builds() {
        let mut writer = CsvWriter::new(&["a", "b"]);
        writer.row(vec!["only one".into()]);
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn wrong_width_is_padded_or_truncated_in_release_builds() {
        let mut writer = CsvWriter::new(&["a", "b"]);
        writer.row(vec!["only one".into()]);
        writer.row(vec!["1".into(), "2".into(), "3".into()]);
        assert_eq!(writer.finish(), "a,b\r\nonly one,\r\n1,2\r\n");
    }

    #[test]
    fn parse_quoted_fields_with_embedded_separators() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"x\r\ny\",\"p\nq\",\"\"\r\n";
        assert_eq!(parse(text).unwrap(), rows(&[&["a", "b,c", "say \"hi\""], &["x\r\ny", "p\nq", ""]]));
    }

    #[test]
    fn parse_accepts_lf_line_ends_and_a_missing_final_line_end() {
        assert_eq!(parse("a,b\nc,d").unwrap(), rows(&[&["a", "b"], &["c", "d"]]));
        assert_eq!(parse("a,b\r\nc,d\n").unwrap(), rows(&[&["a", "b"], &["c", "d"]]));
        assert_eq!(parse("\"a\"").unwrap(), rows(&[&["a"]]));
    }

    #[test]
    fn parse_empty_fields_and_lines() {
        assert_eq!(parse("").unwrap(), Vec::<Vec<String>>::new());
        assert_eq!(parse("\r\n").unwrap(), rows(&[&[""]]));
        assert_eq!(parse("a,\r\n,b\r\n,\r\n").unwrap(), rows(&[&["a", ""], &["", "b"], &["", ""]]));
        assert_eq!(parse("a,").unwrap(), rows(&[&["a", ""]]));
        assert_eq!(parse("a\r\n\r\nb\r\n").unwrap(), rows(&[&["a"], &[""], &["b"]]));
    }

    #[test]
    fn parse_keeps_spaces_and_unicode() {
        assert_eq!(parse(" a , b \r\n").unwrap(), rows(&[&[" a ", " b "]]));
        assert_eq!(parse("日本,\"🚀,✓\"\r\n").unwrap(), rows(&[&["日本", "🚀,✓"]]));
    }

    #[test]
    fn parse_rejects_an_unterminated_quote() {
        assert_eq!(parse("a,\"open").unwrap_err(), "line 1: unterminated quoted field");
        assert_eq!(parse("a\r\n\"open\r\nstill open").unwrap_err(), "line 2: unterminated quoted field");
        assert_eq!(parse("\"").unwrap_err(), "line 1: unterminated quoted field");
    }

    #[test]
    fn parse_rejects_a_quote_inside_an_unquoted_field() {
        assert_eq!(parse("a,b\"c\r\n").unwrap_err(), "line 1: quote inside an unquoted field");
        assert_eq!(parse("ok\r\nab\"\r\n").unwrap_err(), "line 2: quote inside an unquoted field");
    }

    #[test]
    fn parse_rejects_text_after_a_closing_quote() {
        assert_eq!(parse("\"a\"b,c").unwrap_err(), "line 1: unexpected 'b' after a closing quote");
        assert_eq!(parse("\"a\" ,c").unwrap_err(), "line 1: unexpected ' ' after a closing quote");
    }

    #[test]
    fn parse_rejects_a_bare_carriage_return() {
        assert_eq!(parse("a\rb").unwrap_err(), "line 1: carriage return outside quotes not followed by a line feed");
    }

    #[test]
    fn parse_counts_lines_inside_quoted_fields() {
        assert_eq!(parse("\"x\ny\"\r\nb\"").unwrap_err(), "line 3: quote inside an unquoted field");
    }
}
