//! Plain text and markdown tables with aligned columns.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Renders a markdown table (`| a | b |` with a `|---|--:|` rule), padded for reading.
pub fn markdown(headers: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let widths = widths(headers, rows);
    let mut out = String::new();
    out.push_str(&line(
        headers
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .as_slice(),
        &widths,
        align,
    ));
    let rule: Vec<String> = widths
        .iter()
        .zip(align)
        .map(|(&w, a)| match a {
            Align::Left => "-".repeat(w.max(3)),
            Align::Right => format!("{}:", "-".repeat(w.max(3) - 1)),
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for r in rows {
        out.push_str(&line(r, &widths, align));
    }
    out
}

fn widths(headers: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count().max(3)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    w
}

fn line(cells: &[String], widths: &[usize], align: &[Align]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .zip(align)
        .map(|((c, &w), a)| {
            let pad = w.saturating_sub(c.chars().count());
            match a {
                Align::Left => format!("{c}{}", " ".repeat(pad)),
                Align::Right => format!("{}{c}", " ".repeat(pad)),
            }
        })
        .collect();
    format!("| {} |\n", padded.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_markdown() {
        let t = markdown(
            &["model", "t/s"],
            &[Align::Left, Align::Right],
            &[
                vec!["a".into(), "1.5".into()],
                vec!["longer".into(), "100.25".into()],
            ],
        );
        assert_eq!(
            t,
            "| model  |    t/s |\n| ------ | -----: |\n| a      |    1.5 |\n| longer | 100.25 |\n"
        );
    }
}
