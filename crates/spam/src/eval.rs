//! Metrics for `spam eval`: confusion matrix, precision/recall/F1/FPR/accuracy, ROC AUC and a
//! threshold sweep; and the threshold picker used at training time on the validation slice.
//! Spam is the positive class; "called spam" = score >= the suspicious threshold (SPEC §2.5).

use std::fmt;

use serde::Serialize;

/// One scored message.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub score: f64,
    pub is_spam: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepRow {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fpr: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FolderRow {
    pub folder: String,
    pub called_spam: usize,
    pub messages: usize,
}

/// A source group of a corpus with several (see `corpus::Entry::group`): how many of its
/// messages were called spam. For a ham group that share is its false-positive rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupRow {
    pub group: String,
    pub is_spam: bool,
    pub called_spam: usize,
    pub messages: usize,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    /// The corpus directory's name and the split evaluated (`test` or `validation`).
    pub corpus: String,
    pub split: String,
    pub messages: usize,
    pub suspicious_threshold: f64,
    pub spam_threshold: f64,
    pub confusion: Confusion,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fpr: f64,
    pub accuracy: f64,
    pub auc: f64,
    pub sweep: Vec<SweepRow>,
    pub folders: Vec<FolderRow>,
    pub groups: Vec<GroupRow>,
    pub false_positives: Vec<String>,
    pub false_negatives: Vec<String>,
}

impl EvalReport {
    pub(crate) fn add_folder(&mut self, folder: &str, called: bool) {
        let row = match self.folders.iter_mut().position(|r| r.folder == folder) {
            Some(i) => &mut self.folders[i],
            None => {
                self.folders.push(FolderRow {
                    folder: folder.into(),
                    called_spam: 0,
                    messages: 0,
                });
                let last = self.folders.len() - 1;
                &mut self.folders[last]
            }
        };
        row.messages += 1;
        row.called_spam += usize::from(called);
    }

    pub(crate) fn add_group(&mut self, group: &str, is_spam: bool, called: bool) {
        let i = match self.groups.iter().position(|r| r.group == group) {
            Some(i) => i,
            None => {
                self.groups.push(GroupRow {
                    group: group.into(),
                    is_spam,
                    called_spam: 0,
                    messages: 0,
                    rate: 0.0,
                });
                self.groups.len() - 1
            }
        };
        let row = &mut self.groups[i];
        row.messages += 1;
        row.called_spam += usize::from(called);
        row.rate = ratio(row.called_spam, row.messages);
    }

    /// The row of a named group, if the corpus has it.
    pub fn group(&self, name: &str) -> Option<&GroupRow> {
        self.groups.iter().find(|g| g.group == name)
    }
}

pub fn confusion(scored: &[Scored], t: f64) -> Confusion {
    let mut c = Confusion::default();
    for s in scored {
        match (s.score >= t, s.is_spam) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn row(scored: &[Scored], t: f64) -> SweepRow {
    let c = confusion(scored, t);
    let precision = ratio(c.tp, c.tp + c.fp);
    let recall = ratio(c.tp, c.tp + c.fn_);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    SweepRow {
        threshold: t,
        precision,
        recall,
        f1,
        fpr: ratio(c.fp, c.fp + c.tn),
    }
}

/// ROC AUC as the probability a random spam outscores a random ham (ties count half).
pub fn auc(scored: &[Scored]) -> f64 {
    let mut v: Vec<&Scored> = scored.iter().collect();
    v.sort_by(|a, b| a.score.total_cmp(&b.score));
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].score == v[i].score {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * v[i..j].iter().filter(|s| s.is_spam).count() as f64;
        i = j;
    }
    let pos = scored.iter().filter(|s| s.is_spam).count() as f64;
    let neg = scored.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.0;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

pub fn report(scored: &[Scored], (suspicious, spam): (f64, f64)) -> EvalReport {
    let r = row(scored, suspicious);
    let c = confusion(scored, suspicious);
    let mut sweep_ts: Vec<f64> = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0].to_vec();
    sweep_ts.extend([suspicious, spam]);
    sweep_ts.sort_by(f64::total_cmp);
    sweep_ts.dedup();
    EvalReport {
        corpus: String::new(),
        split: String::new(),
        messages: scored.len(),
        suspicious_threshold: suspicious,
        spam_threshold: spam,
        accuracy: ratio(c.tp + c.tn, scored.len()),
        confusion: c,
        precision: r.precision,
        recall: r.recall,
        f1: r.f1,
        fpr: r.fpr,
        auc: auc(scored),
        sweep: sweep_ts.into_iter().map(|t| row(scored, t)).collect(),
        folders: Vec::new(),
        groups: Vec::new(),
        false_positives: Vec::new(),
        false_negatives: Vec::new(),
    }
}

/// Thresholds from validation scores: `suspicious` maximises F1 among cut points whose FPR is at
/// most `max_fpr`; `spam` is above every validation ham (and at least `suspicious + 1`).
pub fn pick_thresholds(scored: &[Scored], max_fpr: f64) -> (f64, f64) {
    let mut scores: Vec<f64> = scored.iter().map(|s| s.score).collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let cuts: Vec<f64> = scores.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let mut best = (f64::MIN, 0.0f64);
    for &t in &cuts {
        let r = row(scored, t);
        if r.fpr <= max_fpr && r.f1 > best.0 {
            best = (r.f1, t);
        }
    }
    let suspicious = (best.1 * 100.0).round() / 100.0;
    let max_ham = scored
        .iter()
        .filter(|s| !s.is_spam)
        .map(|s| s.score)
        .fold(f64::MIN, f64::max);
    let spam = ((max_ham + 0.5).max(suspicious + 1.0) * 100.0).round() / 100.0;
    (suspicious, spam)
}

/// Default thresholds from several validation sets, each with its own false-positive ceiling:
/// `suspicious` is the lowest cut (most spam caught) at which every set stays within its
/// ceiling; `spam` is above every validation ham (and at least `suspicious + 1`).
pub fn pick_calibrated(sets: &[(&[Scored], f64)]) -> (f64, f64) {
    let mut scores: Vec<f64> = sets
        .iter()
        .flat_map(|s| s.0.iter().map(|x| x.score))
        .collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let cuts: Vec<f64> = scores.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let ok = |t: f64| sets.iter().all(|(v, max)| row(v, t).fpr <= *max);
    let best = cuts
        .iter()
        .copied()
        .find(|&t| ok(t))
        .unwrap_or_else(|| scores.last().copied().unwrap_or(0.0) + 0.01);
    // Round up, so the rounded cut is never looser than the one found.
    let suspicious = (best * 100.0).ceil() / 100.0;
    let max_ham = sets
        .iter()
        .flat_map(|s| s.0.iter())
        .filter(|s| !s.is_spam)
        .map(|s| s.score)
        .fold(f64::MIN, f64::max);
    let spam = ((max_ham + 0.5).max(suspicious + 1.0) * 100.0).round() / 100.0;
    (suspicious, spam)
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.confusion;
        if !self.corpus.is_empty() {
            writeln!(f, "corpus {} ({} split)", self.corpus, self.split)?;
        }
        writeln!(
            f,
            "messages {}  thresholds suspicious {:.2} spam {:.2}",
            self.messages, self.suspicious_threshold, self.spam_threshold
        )?;
        writeln!(
            f,
            "| precision | recall | F1 | FPR | accuracy | AUC | TP | FP | TN | FN |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
        writeln!(
            f,
            "| {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} | {} | {} |",
            self.precision,
            self.recall,
            self.f1,
            self.fpr,
            self.accuracy,
            self.auc,
            c.tp,
            c.fp,
            c.tn,
            c.fn_
        )?;
        writeln!(
            f,
            "\nthreshold sweep (score >= t called spam)\n| t | precision | recall | F1 | FPR |\n|---|---|---|---|---|"
        )?;
        for r in &self.sweep {
            writeln!(
                f,
                "| {:.2} | {:.4} | {:.4} | {:.4} | {:.4} |",
                r.threshold, r.precision, r.recall, r.f1, r.fpr
            )?;
        }
        if !self.folders.is_empty() {
            writeln!(f, "\nper folder (called spam / messages)")?;
            for r in &self.folders {
                writeln!(f, "  {:<12} {}/{}", r.folder, r.called_spam, r.messages)?;
            }
        }
        if !self.groups.is_empty() {
            writeln!(
                f,
                "\nper source group (called spam / messages: recall for spam, FPR for ham)"
            )?;
            for r in &self.groups {
                let what = if r.is_spam { "recall" } else { "FPR" };
                writeln!(
                    f,
                    "  {:<20} {}/{}  {what} {:.4}",
                    r.group, r.called_spam, r.messages, r.rate
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f64, is_spam: bool) -> Scored {
        Scored { score, is_spam }
    }

    #[test]
    fn metrics_on_a_small_table() {
        let v = [
            s(-3.0, false),
            s(-1.0, false),
            s(2.0, false),
            s(1.0, true),
            s(5.0, true),
        ];
        let r = report(&v, (1.5, 4.0));
        assert_eq!(
            r.confusion,
            Confusion {
                tp: 1,
                fp: 1,
                tn: 2,
                fn_: 1
            }
        );
        assert!((r.precision - 0.5).abs() < 1e-9);
        assert!((r.auc - 5.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn calibrated_cut_respects_every_ceiling() {
        // Set a allows one false positive in 4; set b (commercial ham) none.
        let a = [
            s(-2.0, false),
            s(-1.0, false),
            s(0.0, false),
            s(3.0, false),
            s(1.0, true),
            s(4.0, true),
        ];
        let b = [s(2.0, false), s(-3.0, false)];
        let (sus, spam) = pick_calibrated(&[(&a, 0.25), (&b, 0.0)]);
        assert!(sus > 2.0 && sus <= 2.5, "{sus}");
        assert!(spam >= 3.5);
        let (sus, _) = pick_calibrated(&[(&a, 0.25)]);
        assert!(sus > 0.0 && sus <= 0.5, "{sus}");
    }

    #[test]
    fn picks_thresholds_between_classes() {
        let v = [s(-3.0, false), s(-1.0, false), s(2.0, true), s(5.0, true)];
        let (sus, spam) = pick_thresholds(&v, 0.0);
        assert!(sus > -1.0 && sus < 2.0);
        assert!(spam >= sus + 1.0);
    }
}
