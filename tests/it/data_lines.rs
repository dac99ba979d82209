//! Line numbers in messages are the file's own, whatever its line endings: the csv crate
//! places CRLF records one line early, and the reader corrects it.

use crate::common::TempFile;
use riskgrad::data::{prepare, PrepareOptions};
use riskgrad::Error;

/// The line an error names when column b (declared numeric) holds "x".
fn error_line(name: &str, text: &str) -> Option<u64> {
    let file = TempFile::new(name, text.as_bytes());
    let opts = PrepareOptions {
        numeric: vec!["b".into()],
        ..Default::default()
    };
    match prepare(&file.0, &opts).unwrap_err() {
        Error::Data { line, .. } => line,
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn crlf_and_lf_files_name_the_same_lines() {
    // Line 1 header; the bad cell sits on line 5, after a quoted cell holding a newline
    // (lines 3 and 4) in one of the cases.
    for (rows, bad_line) in [
        (vec!["1,2,0", "3,4,1", "5,6,0", "7,x,1", "8,9,0"], 5),
        (vec!["1,2,0", "3,\"4\n\",1", "7,x,1", "8,9,0"], 5),
        (vec!["1,x,0", "3,4,1", "5,6,0"], 2),
    ] {
        for ending in ["\n", "\r\n"] {
            let text = format!(
                "a,b,y{ending}{}{ending}",
                rows.iter()
                    .map(|r| r.replace('\n', ending))
                    .collect::<Vec<_>>()
                    .join(ending)
            );
            let name = format!("lines{}{}.csv", bad_line, ending.len());
            assert_eq!(
                error_line(&name, &text),
                Some(bad_line),
                "{ending:?} endings: {text:?}"
            );
        }
    }
}

#[test]
fn a_file_with_another_separator_is_named_as_such() {
    for (sep, word) in [(";", "';'"), ("\t", "tab"), ("|", "'|'")] {
        let text = format!("a{sep}b{sep}y\n1{sep}2{sep}0\n3{sep}4{sep}1\n");
        let file = TempFile::new("separated.csv", text.as_bytes());
        let e = prepare(&file.0, &PrepareOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Data { line: Some(1), .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(word) && msg.contains("comma-separated"),
            "{msg}"
        );
    }
}
