//! model_card.md (issue 14 item 6), written beside every saved model: the data (with
//! `--date`'s range), preprocessing, settings, validation with intervals, challenger,
//! constraints and limits; through the CLI for a single run, a logistic model and a
//! cross-validation ensemble; and `--date`'s errors.

use crate::common::*;
use crate::lifecycle_common::temp_dir;
use riskgrad::model_io::SavedModel;
use riskgrad::rng::Rng;

/// A small table with a year-first date column, a numeric, a categorical and a target.
fn dated_table(dir: &std::path::Path, bad_date_at: Option<usize>) -> std::path::PathBuf {
    let mut rng = Rng::new(7);
    let mut csv = String::from("opened,income,region,default\n");
    for i in 0..400 {
        let month = 1 + i % 12;
        let year = 2019 + i / 120;
        let date = match bad_date_at {
            Some(k) if k == i => "31/12/2020".to_string(),
            _ if i % 50 == 7 => String::new(),
            _ => format!("{year}-{month:02}-{:02}", 1 + i % 28),
        };
        let income = rng.range(10.0, 100.0);
        let y = (rng.range(0.0, 1.0) < 0.6 - income / 200.0) as u8;
        let region = ["north", "south", "east"][i % 3];
        csv.push_str(&format!("{date},{income:.2},{region},{y}\n"));
    }
    let path = dir.join("dated.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn card(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("model_card.md")).expect("model_card.md beside the model")
}

#[test]
fn a_trained_model_has_a_card_with_its_data_settings_figures_and_limits() {
    let dir = temp_dir("card_single");
    let data = dated_table(&dir, None);
    let out = dir.join("model");
    let o = train_small(
        &data,
        &out,
        &[
            "--date",
            "opened",
            "--monotone",
            "income:-1",
            "--epochs",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = SavedModel::load(&out).unwrap();
    assert!(
        !saved.source_names().contains(&"opened".to_string()),
        "the date is not a feature"
    );
    let text = card(&out);
    let v = saved.validation.as_ref().unwrap();
    for want in [
        // The default: three members, averaged.
        "# Model card: ensemble of 3 × MLP, hidden layers 4".to_string(),
        "| ensemble | the mean probability of 3 networks, each with its own initial weights and shuffles and stopping on its own rows set aside |".into(),
        "| epochs | kept/trained by each of the 3 members: ".into(),
        "2019-01-01 to 2022-12-20 (column `opened`; 8 rows without a date)".into(),
        "400 with a target".into(),
        "| `income` | numeric |".into(),
        "| `region` | categorical | one-hot over 3 values".into(),
        "`opened` (the date, --date)".into(),
        "- `income`: the probability of default is non-increasing in it".into(),
        format!("| AUC | {:.4} (95% CI", v.auc),
        "Challenger: logistic regression".into(),
        "## Known limits".into(),
        "not on a later one".into(),
        "_to complete_".into(),
    ] {
        assert!(text.contains(&want), "the card lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("No monotone constraints"), "{text}");
}

#[test]
fn logistic_and_ensemble_models_have_cards_and_a_plain_cross_validation_none() {
    let dir = temp_dir("card_kinds");
    let data = dated_table(&dir, None);
    let out = dir.join("logistic");
    let o = train_small(
        &data,
        &out,
        &["--model", "logistic", "--lr", "0.5", "--seed", "3"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The network flags it was given are named, not silently dropped; --seed it uses.
    let note = stderr(&o)
        .lines()
        .find(|l| l.starts_with("note: --model logistic"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no note of the unused flags: {}", stderr(&o)));
    for flag in ["--hidden", "--device", "--lr"] {
        assert!(note.contains(flag), "{note}");
    }
    assert!(!note.contains("--seed"), "{note}");
    let plain = dir.join("logistic-plain");
    let (d, p) = (data.to_str().unwrap(), plain.to_str().unwrap());
    let o = riskgrad(&["train", "--data", d, "--model", "logistic", "--out", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("note: --model logistic"),
        "{}",
        stderr(&o)
    );
    let text = card(&out);
    assert!(
        text.contains("logistic regression (no hidden layer)"),
        "{text}"
    );
    assert!(text.contains("newton (irls)"), "{text}");
    assert!(text.contains("dates | not known"), "{text}");

    let out = dir.join("cv");
    let o = train_small(&data, &out, &["--cv", "3", "--ensemble", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = card(&out);
    for want in [
        "ensemble of 9 ×",
        "the mean probability of 9 members: 3 per fold",
        "3-fold stratified cross-validation",
        "| mean ± std |",
        "out-of-fold score",
    ] {
        assert!(text.contains(want), "the card lacks {want:?}:\n{text}");
    }
    // Without --ensemble a cross-validation saves no model, so it may not replace one
    // (the model and its card stay); into a new directory it writes no card.
    let o = train_small(&data, &out, &["--cv", "3", "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(card(&out), text);
    let plain = dir.join("cv-plain");
    let o = train_small(&data, &plain, &["--cv", "3", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!plain.join("model_card.md").exists());
}

#[test]
fn date_errors_name_the_flag_line_and_column() {
    let dir = temp_dir("card_dates");
    let data = dated_table(&dir, Some(30));
    let out = dir.join("model");
    let o = train_small(&data, &out, &["--date", "opened"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("line 32") && err.contains("opened") && err.contains("31/12/2020"),
        "{err}"
    );
    let o = train_small(&data, &out, &["--date", "closed"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--date") && err.contains("closed"), "{err}");
    let o = riskgrad(&["train", "--date", "opened", "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bundled"), "{err}");
    assert!(!out.join("config.json").exists());
}
