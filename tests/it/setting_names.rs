//! A data error about something the caller chose (a column it named, a positive class,
//! the strict reading, a date column) is typed with that setting: the library says it in
//! words, the CLI under its flag. Both keep the file, line and column.

use crate::common::{riskgrad, stderr, TempFile};
use riskgrad::data::{prepare, PrepareOptions, SignedLog};
use riskgrad::{Error, Setting};

/// 40 rows; line 3 has an amount that is not a number, line 4 a date that is not one.
fn table() -> String {
    let mut t = String::from("id,amount,when,grade,y\n");
    for i in 0..40 {
        let amount = if i == 1 {
            "x".to_string()
        } else {
            (10 + i * 7).to_string()
        };
        let when = if i == 2 {
            "someday".to_string()
        } else {
            format!("2024-01-{:02}", 1 + i % 28)
        };
        let y = if i % 3 == 0 { "late" } else { "paid" };
        t += &format!("{i},{amount},{when},{},{y}\n", ["a", "b"][i % 2]);
    }
    t
}

#[test]
fn data_errors_about_a_setting_name_it_in_words_and_by_flag() {
    let csv = TempFile::new("setting-names.csv", table().as_bytes());
    let path = csv.0.to_str().unwrap();
    let with = |f: &dyn Fn(&mut PrepareOptions)| {
        let mut o = PrepareOptions {
            positive: Some("late".into()),
            ..Default::default()
        };
        f(&mut o);
        o
    };
    // (the library's options, the CLI's flags, the setting, what the message says)
    let cases: Vec<(PrepareOptions, Vec<&str>, Setting, &str)> = vec![
        (
            with(&|o| o.positive = None),
            vec![],
            Setting::Positive,
            "say which is the positive class",
        ),
        (
            with(&|o| o.positive = Some("gone".into())),
            vec!["--positive", "gone"],
            Setting::Positive,
            "\"gone\" is not a value of the target",
        ),
        (
            with(&|o| o.categorical = vec!["nope".into()]),
            vec!["--positive", "late", "--categorical", "nope"],
            Setting::Categorical,
            "[\"nope\"]: no such column",
        ),
        (
            with(&|o| o.drop = vec!["nada".into()]),
            vec!["--positive", "late", "--drop", "nada"],
            Setting::Drop,
            "[\"nada\"]: no such column",
        ),
        (
            with(&|o| o.signed_log = SignedLog::Columns(vec!["zip".into()])),
            vec!["--positive", "late", "--signed-log", "zip"],
            Setting::SignedLog,
            "[\"zip\"]: no such column",
        ),
        (
            with(&|o| o.strict = true),
            vec!["--positive", "late", "--strict"],
            Setting::Strict,
            "the strict reading refuses them",
        ),
    ];
    for (opts, flags, setting, says) in cases {
        let e = prepare(&csv.0, &opts).unwrap_err();
        assert!(
            matches!(&e, Error::Data { setting: Some(s), .. } if *s == setting),
            "{setting:?}: {e:?}"
        );
        let words = e.to_string();
        assert!(
            words.contains(&format!("{}: ", setting.describe()))
                && words.contains(says)
                && words.contains("setting-names.csv")
                && !words.contains("--"),
            "{words}"
        );

        let out = csv.0.with_extension("model");
        let out = out.to_str().unwrap();
        let train = ["train", "--data", path, "--target", "y", "--out", out];
        let args = [&train[..], &["--device", "cpu"], &flags].concat();
        let o = riskgrad(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        let flag = match setting {
            Setting::Positive => "--positive",
            Setting::Categorical => "--categorical",
            Setting::Drop => "--drop",
            Setting::SignedLog => "--signed-log",
            Setting::Strict => "--strict",
            _ => unreachable!(),
        };
        assert!(
            err.contains(&format!("{flag}: "))
                && err.contains(says)
                && err.contains("setting-names.csv")
                && !err.contains(&format!("{}: ", setting.describe())),
            "{args:?}: {err}"
        );
        assert!(
            !std::path::Path::new(out).exists(),
            "a refused run leaves no model"
        );
    }
}

#[test]
fn a_date_that_is_not_one_names_the_date_column_setting() {
    let csv = TempFile::new("setting-dates.csv", table().as_bytes());
    let path = csv.0.to_str().unwrap();
    let out = csv.0.with_extension("model");
    let o = riskgrad(&[
        "train",
        "--data",
        path,
        "--target",
        "y",
        "--positive",
        "late",
        "--date",
        "when",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--date: \"someday\" is not a date")
            && err.contains("line 4")
            && err.contains("\"when\""),
        "{err}"
    );
    assert!(!out.exists(), "a refused run leaves no model");
}
