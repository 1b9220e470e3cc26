//! Uploaded files: which kinds are accepted (by extension *and* by content),
//! and how a client's file name is made safe to keep as metadata.

use time::OffsetDateTime;
use uuid::Uuid;

/// A stored file, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The client's name, sanitised ([`sanitize_filename`]).
    pub filename: String,
    /// Decided by the server from the content, never taken from the client.
    pub content_type: String,
    pub size: u64,
    pub created_at: OffsetDateTime,
}

/// The accepted kinds of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Jpeg,
    Png,
    Pdf,
}

/// How many leading bytes are read before the content is judged: `%PDF`
/// may sit anywhere in the first 1024 bytes (PDF 1.4 reference, H.3.4.1).
pub const SNIFF_BYTES: usize = 1024;

/// Longest name kept, in characters, extension included.
pub const FILENAME_MAX_CHARS: usize = 100;

impl FileKind {
    /// The kind a (sanitised) extension announces; `None` for any other.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }

    /// True when the leading bytes are this kind's magic number. The whole
    /// signature table decides (an executable is recognised as one first),
    /// so a file that merely contains another kind's magic does not pass.
    pub fn matches(self, head: &[u8]) -> bool {
        infer::get(head).is_some_and(|found| found.mime_type() == self.content_type())
    }
}

/// A client's file name made safe to store and to show: only the last path
/// component (`/` and `\` both separate), without control, bidirectional
/// override, quote or Windows-reserved characters, leading dots or
/// surrounding blanks, and at most [`FILENAME_MAX_CHARS`] characters with the
/// extension kept. Returns the name and its lower-cased extension; a name
/// left without a stem becomes `file.<ext>`. The result is metadata only:
/// no path is ever built from it.
pub fn sanitize_filename(raw: &str) -> (String, Option<String>) {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| is_kept(*c)).collect();
    let cleaned = cleaned.trim();
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !ext.trim().is_empty() => (stem, Some(ext.trim().to_lowercase())),
        Some((stem, _)) => (stem, None),
        None => (cleaned, None),
    };
    // No hidden files, no `.` or `..`, nothing that ends in a dot or blank.
    let stem = stem.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let budget = match &ext {
        Some(ext) => FILENAME_MAX_CHARS.saturating_sub(ext.chars().count() + 1),
        None => FILENAME_MAX_CHARS,
    };
    let mut stem: String = stem.chars().take(budget).collect();
    stem.truncate(stem.trim_end_matches(['.', ' ']).len());
    if stem.is_empty() {
        stem.push_str("file");
    }
    let name = match &ext {
        Some(ext) if !ext.is_empty() && ext.chars().count() < FILENAME_MAX_CHARS => {
            format!("{stem}.{ext}")
        }
        _ => stem,
    };
    (name, ext)
}

fn is_kept(c: char) -> bool {
    !c.is_control()
        && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')
        // Bidirectional overrides and isolates make `exe.pdf` look like
        // `fdp.exe` (Unicode TR #36, 2.1).
        && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        && !matches!(c, '\u{feff}' | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> String {
        sanitize_filename(raw).0
    }

    #[test]
    fn only_the_last_component_is_kept() {
        assert_eq!(name("../../etc/passwd.png"), "passwd.png");
        assert_eq!(name("..\\..\\windows\\x.pdf"), "x.pdf");
        assert_eq!(name("C:\\Users\\a\\photo.JPG"), "photo.jpg");
        assert_eq!(name("/abs/path/"), "file");
        assert_eq!(name(".."), "file");
        assert_eq!(name("."), "file");
        assert_eq!(name(""), "file");
    }

    #[test]
    fn control_and_confusing_characters_are_removed() {
        assert_eq!(name("a\0b.pdf"), "ab.pdf");
        assert_eq!(name("line\r\nbreak.png"), "linebreak.png");
        assert_eq!(name("quote\"d;.png"), "quoted;.png");
        assert_eq!(name("report\u{202e}fdp.exe"), "reportfdp.exe");
        assert_eq!(name("  .hidden.png  "), "hidden.png");
        assert_eq!(name(".png"), "file.png");
        assert_eq!(name("trailing. .pdf"), "trailing.pdf");
        assert_eq!(name("photo.jpeg"), "photo.jpeg");
        assert_eq!(name("ünïcödé.png"), "ünïcödé.png");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.pdf", "a".repeat(500));
        let (kept, ext) = sanitize_filename(&long);
        assert_eq!(kept.chars().count(), FILENAME_MAX_CHARS);
        assert!(kept.ends_with(".pdf"));
        assert_eq!(ext.as_deref(), Some("pdf"));
        let (kept, _) = sanitize_filename(&format!("x.{}", "e".repeat(300)));
        assert!(kept.chars().count() <= FILENAME_MAX_CHARS);
    }

    #[test]
    fn extensions_come_from_the_sanitised_name() {
        assert_eq!(sanitize_filename("a.PNG").1.as_deref(), Some("png"));
        assert_eq!(sanitize_filename("evil.png\0").1.as_deref(), Some("png"));
        assert_eq!(sanitize_filename("noext").1, None);
        assert_eq!(sanitize_filename("dot.").1, None);
        assert_eq!(FileKind::from_extension("JPEG"), Some(FileKind::Jpeg));
        assert_eq!(FileKind::from_extension("svg"), None);
        assert_eq!(FileKind::from_extension("txt"), None);
    }

    #[test]
    fn content_must_match_the_kind() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0";
        let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0";
        assert!(FileKind::Png.matches(png));
        assert!(FileKind::Jpeg.matches(jpeg));
        assert!(FileKind::Pdf.matches(pdf));
        assert!(!FileKind::Png.matches(pdf));
        assert!(!FileKind::Jpeg.matches(elf));
        assert!(!FileKind::Jpeg.matches(b"MZ\x90\0\x03\0\0\0"));
        assert!(!FileKind::Pdf.matches(b""));
        // A PNG that carries `%PDF` later on is still a PNG.
        let mut polyglot = png.to_vec();
        polyglot.extend_from_slice(b"%PDF-1.4");
        assert!(!FileKind::Pdf.matches(&polyglot));
    }
}
