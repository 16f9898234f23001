//! stackd.toml(5), written from the README's config reference so that the
//! man page and the README cannot drift apart: a small Markdown-to-roff
//! converter for exactly what that section uses (paragraphs, inline code,
//! links, fenced blocks, `###` headings and key | default | meaning tables).

/// The README, compiled in; the section between `## Config reference` and the next `## `.
const README: &str = include_str!("../../../README.md");

/// The whole stackd.toml(5) page.
pub fn config_page(version: &str, date: &str) -> String {
    let mut out = format!(
        ".TH STACKD.TOML 5 \"{date}\" \"stackd {version}\" \"File Formats\"\n.SH NAME\nstackd.toml \\- the stackd configuration file\n.SH SYNOPSIS\n/etc/stackd/stackd.toml\n.SH DESCRIPTION\n"
    );
    out.push_str(&markdown(section(README, "## Config reference")));
    out.push_str(".SH FILES\n.TP\n/etc/stackd/stackd.toml\nthe host's file, read by every unit\n.TP\n/etc/stackd/examples/\nexample files for the five hosts (px1, px2, be1, be2)\n");
    out.push_str(
        ".SH SEE ALSO\n\\fBstackd\\fR(1), \\fBstackd\\-check\\fR(1), \\fBstackd\\-status\\fR(1)\n",
    );
    out
}

/// The text of the `## ` section titled `title`, without its heading.
pub fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let Some(start) = md.find(title) else {
        return "";
    };
    let body = &md[start + title.len()..];
    let end = body.find("\n## ").map_or(body.len(), |i| i + 1);
    &body[..end]
}

/// Converts the supported Markdown subset to roff.
pub fn markdown(md: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    let mut para = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            out.push_str(if in_code {
                ".PP\n.RS 4\n.nf\n"
            } else {
                ".fi\n.RE\n"
            });
            para = false;
            continue;
        }
        if in_code {
            out.push_str(&escape_line(&escape(line)));
            out.push('\n');
            continue;
        }
        let t = line.trim();
        if t.is_empty() {
            para = false;
        } else if let Some(h) = t.strip_prefix("### ") {
            out.push_str(&format!(".SS \"{}\"\n", plain(h)));
            para = false;
        } else if t.starts_with('|') {
            table_row(t, &mut out);
            para = false;
        } else {
            if !para {
                out.push_str(".PP\n");
                para = true;
            }
            out.push_str(&escape_line(&inline(t)));
            out.push('\n');
        }
    }
    out
}

/// `| key | default | meaning |` → a `.TP` entry; header and rule rows are skipped.
fn table_row(t: &str, out: &mut String) {
    let cells = cells(t);
    if cells
        .iter()
        .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        || cells.first() == Some(&"key")
    {
        return;
    }
    let key = inline(cells.first().copied().unwrap_or(""));
    out.push_str(".TP\n");
    out.push_str(&escape_line(&key));
    out.push('\n');
    let default = cells.get(1).copied().unwrap_or("");
    let meaning = cells.get(2).copied().unwrap_or("");
    let mut text = String::new();
    if !default.is_empty() {
        text.push_str(&format!("Default: {}. ", inline(default)));
    }
    text.push_str(&inline(meaning));
    out.push_str(&escape_line(text.trim()));
    out.push('\n');
}

/// The cells of a table row; a `|` inside `code` belongs to the cell.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let (mut start, mut in_code) = (0, false);
    for (i, c) in row.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '|' if !in_code => {
                out.push(row[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(row[start..].trim());
    out
}

/// Inline Markdown: `code` in bold, `[text](url)` as text, roff-escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['`', '[']) {
        out.push_str(&escape(&rest[..i]));
        let tail = &rest[i..];
        if let Some(code) = tail.strip_prefix('`') {
            if let Some(end) = code.find('`') {
                out.push_str(&format!("\\fB{}\\fR", escape(&code[..end])));
                rest = &code[end + 1..];
                continue;
            }
        } else if let Some((text, after)) = link(tail) {
            out.push_str(&inline(text));
            rest = after;
            continue;
        }
        out.push_str(&escape(&tail[..1]));
        rest = &tail[1..];
    }
    out.push_str(&escape(rest));
    out
}

/// `[text](url)rest` → (text, rest).
fn link(s: &str) -> Option<(&str, &str)> {
    let close = s.find("](")?;
    let end = s[close..].find(')')? + close;
    Some((&s[1..close], &s[end + 1..]))
}

/// Text without Markdown marks, for headings.
fn plain(s: &str) -> String {
    escape(&s.replace('`', ""))
}

/// Backslashes and minus signs as roff wants them.
fn escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// A line starting with `.` or `'` would be read as a request.
fn escape_line(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_subset() {
        let md = "Intro with `code` and a [link](x.md).\n\n### `[proxy]`\n\n| key | default | meaning |\n|---|---|---|\n| `listen` | (required) | where to listen |\n\n```\n.x = 1\n```\n";
        let r = markdown(md);
        assert_eq!(
            r,
            ".PP\nIntro with \\fBcode\\fR and a link.\n.SS \"[proxy]\"\n.TP\n\\fBlisten\\fR\nDefault: (required). where to listen\n.PP\n.RS 4\n.nf\n\\&.x = 1\n.fi\n.RE\n"
        );
    }

    #[test]
    fn the_page_holds_every_table_of_the_readme() {
        let page = config_page("0.1.0", "2026-01-01");
        for needle in [
            ".SS \"[proxy]\"",
            ".SS \"[ha]\"",
            ".SS \"[demo_backend]\"",
            "\\fBclient_max_body_size\\fR",
            "\\fBsession_ttl\\fR",
        ] {
            assert!(page.contains(needle), "{needle} missing");
        }
        assert!(!page.contains("## Operations"), "stops at the next section");
        // A `|` inside code stays in its cell.
        assert_eq!(cells("| `a | b` | c |"), ["`a | b`", "c"]);
    }
}
