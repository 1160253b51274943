//! A small PDF 1.4 writer for text documents: the base-14 Helvetica fonts in
//! WinAnsiEncoding, uncompressed content streams and an exact cross-reference
//! table. A quote is a page or two of text, so a layout engine would be weight
//! without use; the output opens in any reader and its text can be extracted.

/// One run of text at a position on the page (points from the bottom left).
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub bold: bool,
    pub content: String,
}

/// A horizontal rule across part of the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub x1: f32,
    pub x2: f32,
    pub y: f32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub texts: Vec<Text>,
    pub rules: Vec<Rule>,
}

pub const PAGE_WIDTH: f32 = 612.0;
pub const PAGE_HEIGHT: f32 = 792.0;

/// Helvetica's advance widths (per 1000 units of font size) for the characters
/// money and labels use; anything else counts as an average glyph.
fn glyph_width(c: char, bold: bool) -> f32 {
    match c {
        '0'..='9' | '$' => 556.0,
        '.' | ',' | ' ' => 278.0,
        '-' => 333.0,
        '%' => 889.0,
        'i' | 'j' | 'l' => 222.0,
        'm' | 'w' => 833.0,
        'A'..='Z' => 667.0,
        _ if bold => 611.0,
        _ => 556.0,
    }
}

/// The width of `s` at `size` points.
pub fn text_width(s: &str, size: f32, bold: bool) -> f32 {
    s.chars().map(|c| glyph_width(c, bold)).sum::<f32>() * size / 1000.0
}

/// Encodes `s` as a PDF literal string in WinAnsiEncoding: Latin-1 maps
/// directly, a few common typographic characters to their WinAnsi codes, and
/// anything the base fonts cannot show becomes `?`.
fn literal(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'(');
    for c in s.chars() {
        let byte = match c {
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '×' => 0xD7,
            c if (c as u32) < 0x20 => b' ',
            c if (c as u32) < 0x7F || (0xA0..=0xFF).contains(&(c as u32)) => c as u32 as u8,
            _ => b'?',
        };
        if matches!(byte, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b')');
    out
}

fn content_stream(page: &Page) -> Vec<u8> {
    let mut out = Vec::new();
    for rule in &page.rules {
        out.extend_from_slice(
            format!("0.5 w {:.2} {:.2} m {:.2} {:.2} l S\n", rule.x1, rule.y, rule.x2, rule.y).as_bytes(),
        );
    }
    for t in &page.texts {
        let font = if t.bold { "F2" } else { "F1" };
        out.extend_from_slice(format!("BT /{font} {:.1} Tf {:.2} {:.2} Td ", t.size, t.x, t.y).as_bytes());
        out.extend_from_slice(&literal(&t.content));
        out.extend_from_slice(b" Tj ET\n");
    }
    out
}

/// The document's bytes. `title` goes into the document information.
pub fn render(title: &str, pages: &[Page]) -> Vec<u8> {
    let pages: Vec<&Page> = if pages.is_empty() { Vec::new() } else { pages.iter().collect() };
    let empty = Page::default();
    let pages = if pages.is_empty() { vec![&empty] } else { pages };
    // Objects: 1 catalog, 2 page tree, 3 and 4 fonts, 5 info, then a page and its
    // content stream for each page.
    let page_ids: Vec<usize> = (0..pages.len()).map(|i| 6 + 2 * i).collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            page_ids.iter().map(|id| format!("{id} 0 R")).collect::<Vec<_>>().join(" "),
            pages.len()
        )
        .into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".to_vec(),
        {
            let mut info = b"<< /Producer (Tierdesk) /Title ".to_vec();
            info.extend_from_slice(&literal(title));
            info.extend_from_slice(b" >>");
            info
        },
    ];
    for (i, page) in pages.iter().enumerate() {
        let content_id = page_ids[i] + 1;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
            )
            .into_bytes(),
        );
        let stream = content_stream(page);
        let mut obj = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
        obj.extend_from_slice(&stream);
        obj.extend_from_slice(b"\nendstream");
        objects.push(obj);
    }

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}

/// Lays text out top to bottom, starting a new page when one is full.
#[derive(Debug, Clone)]
pub struct Flow {
    pages: Vec<Page>,
    y: f32,
    pub left: f32,
    pub right: f32,
    top: f32,
    bottom: f32,
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            pages: vec![Page::default()],
            y: PAGE_HEIGHT - 72.0,
            left: 72.0,
            right: PAGE_WIDTH - 72.0,
            top: PAGE_HEIGHT - 72.0,
            bottom: 72.0,
        }
    }
}

impl Flow {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn advance(&mut self, height: f32) {
        if self.y - height < self.bottom {
            self.pages.push(Page::default());
            self.y = self.top;
        }
        self.y -= height;
    }

    /// A line of text at the left margin.
    pub fn line(&mut self, content: &str, size: f32, bold: bool) {
        self.advance(size * 1.4);
        let (x, y) = (self.left, self.y);
        self.page().texts.push(Text { x, y, size, bold, content: content.to_string() });
    }

    /// A label at the left margin and an amount right-aligned on the same line.
    pub fn row(&mut self, label: &str, amount: &str, size: f32, bold: bool) {
        self.advance(size * 1.5);
        let (left, right, y) = (self.left, self.right, self.y);
        let x = right - text_width(amount, size, bold);
        let page = self.page();
        page.texts.push(Text { x: left, y, size, bold, content: label.to_string() });
        page.texts.push(Text { x, y, size, bold, content: amount.to_string() });
    }

    /// A paragraph wrapped at word boundaries to the text width.
    pub fn paragraph(&mut self, content: &str, size: f32) {
        let width = self.right - self.left;
        for source_line in content.lines() {
            let mut current = String::new();
            for word in source_line.split_whitespace() {
                let candidate = if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
                if text_width(&candidate, size, false) > width && !current.is_empty() {
                    self.line(&current, size, false);
                    current = word.to_string();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                self.line(&current, size, false);
            }
        }
    }

    pub fn rule(&mut self) {
        self.advance(8.0);
        let (x1, x2, y) = (self.left, self.right, self.y + 4.0);
        self.page().rules.push(Rule { x1, x2, y });
    }

    pub fn gap(&mut self, height: f32) {
        self.advance(height);
    }

    pub fn finish(self) -> Vec<Page> {
        self.pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_reference_offsets_point_at_their_objects() {
        let mut flow = Flow::default();
        flow.line("Quote (Q-2026-001) \\ café", 12.0, true);
        flow.row("Total", "$3,060.00", 11.0, false);
        let pdf = render("Quote", &flow.finish());
        let at = |offset: usize, what: &[u8]| pdf[offset..].starts_with(what);
        assert!(at(0, b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        // Offsets are byte positions: read them from the bytes, not a lossy string.
        let tail = std::str::from_utf8(&pdf[pdf.len() - 40..]).unwrap();
        let xref_at: usize = tail.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(at(xref_at, b"xref"));
        let table = std::str::from_utf8(&pdf[xref_at..]).unwrap();
        let entries: Vec<usize> =
            table.lines().skip(3).take_while(|l| l.ends_with(" n ")).map(|l| l[..10].parse().unwrap()).collect();
        assert_eq!(entries.len(), 7);
        for (i, offset) in entries.iter().enumerate() {
            assert!(at(*offset, format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
        // Parentheses and backslashes are escaped; é is one WinAnsi byte.
        assert!(pdf.windows(22).any(|w| w == b"(Quote \\(Q-2026-001\\) ".as_slice()));
        assert!(pdf.windows(6).any(|w| w == b"caf\xE9) ".as_slice()));
    }

    #[test]
    fn long_content_flows_onto_more_pages() {
        let mut flow = Flow::default();
        for i in 0..120 {
            flow.line(&format!("line {i}"), 10.0, false);
        }
        let pages = flow.finish();
        assert!(pages.len() >= 2);
        let pdf = String::from_utf8_lossy(&render("x", &pages)).to_string();
        assert!(pdf.contains(&format!("/Count {}", pages.len())));
    }

    #[test]
    fn paragraphs_wrap_inside_the_margins() {
        let mut flow = Flow::default();
        flow.paragraph(&"word ".repeat(200), 10.0);
        let pages = flow.finish();
        let lines = &pages[0].texts;
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|t| text_width(&t.content, 10.0, false) <= PAGE_WIDTH - 144.0));
    }
}
