"""The report builder on a small finished run, and the page rendered by Chromium."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from orthocore.report import RESULTS_FORMAT, defense_table, reproduction_checks, side_by_side_table, write_report

EPS = [0.01, 0.03, 0.05]
ATTACKS = ["fgsm", "pgd"]


def _results():
    models = [
        {"name": "reference", "role": "reference", "lambda": 0.0, "test_accuracy": 97.0, "train_seconds": 3.0},
        {"name": "ordinary", "role": "ordinary", "lambda": 0.0, "test_accuracy": 96.5, "train_seconds": 3.1,
         "delta": {"signed_mean": 0.6, "signed_std": 0.1, "abs_mean": 0.6, "abs_std": 0.1}},
        {"name": "orthogonal-λ3", "role": "orthogonal", "lambda": 3.0, "test_accuracy": 96.0, "train_seconds": 7.0,
         "delta": {"signed_mean": 0.01, "signed_std": 0.03, "abs_mean": 0.02, "abs_std": 0.02}},
    ]
    transfer = []
    for target, scale in [("reference", 1.0), ("ordinary", 0.7), ("orthogonal-λ3", 0.3)]:
        for attack in ATTACKS:
            for eps in EPS:
                transfer.append({"source": "reference", "target": target, "attack": attack, "eps": eps,
                                 "fooling_percent": 100 * scale * eps / 0.05, "n": 200})
    defenses = []
    for target, defense, clean in [("ordinary", "none", 0.0), ("ordinary", "JPEG-Quality=80", 4.0),
                                   ("orthogonal-λ3", "none", 0.0)]:
        for attack in ATTACKS:
            for eps in (0.03, 0.05):
                defenses.append({"target": target, "defense": defense, "clean_fooling_percent": clean,
                                 "attack": attack, "eps": eps, "fooling_percent": 10.0 + eps * 100, "total": 200})
    security = {
        "eps": [0.1, 0.2], "images": 200, "adaptive_lambda": 3.0,
        "rows": [{"target": target, "attack": attack, "eps": eps, "fooled": 0, "total": 200, "fooling_percent": ratio}
                 for target, base in (("ordinary", 30.0), ("orthogonal-λ3", 60.0))
                 for attack, ratio in (("white-box", base), ("transfer from K", 90.0 - base))
                 for eps in (0.1, 0.2)],
        "diagnostics": {target: {"mean_input_gradient_norm": 0.5, "mean_logit_margin": 4.0,
                                 "black_box_only_percent": [0.0, 1.5], "white_box_at_largest_eps_percent": 99.0}
                        for target in ("ordinary", "orthogonal-λ3")},
        "verdicts": [{"claim": "white-box PGD fools it no more than the ordinary model", "target": "orthogonal-λ3",
                      "outcome": "does not hold", "defended": [60.0], "baseline": [30.0],
                      "evidence": "defended 60.0 % vs baseline 30.0 %"}],
    }  # fmt: skip
    return {
        "format": RESULTS_FORMAT, "title": "test study", "seeds": [0], "config": {"data": "digits"}, "versions": {"torch": "x"},
        "timings": {"train": 1.0}, "notes": ["a note"], "models": models, "transfer": transfer,
        "defenses": defenses, "security": security,
        "panels": {"gradcam_models": ["reference", "orthogonal-λ3"], "perturbation_attacks": ATTACKS,
                   "perturbation_eps": EPS},
    }


@pytest.fixture
def finished_run(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    np.savez(
        tmp_path / "panels.npz",
        gradcam_images=rng.random((3, 1, 8, 8)), gradcam_0=rng.random((3, 8, 8)), gradcam_1=rng.random((3, 8, 8)),
        perturbation_clean=rng.random((1, 8, 8)),
        **{f"perturbation_{a}": rng.random((len(EPS), 1, 8, 8)) for a in ATTACKS},
    )
    return tmp_path


def test_report_files_and_contents(finished_run):
    paths = write_report(finished_run)
    assert {"html", "markdown", "fooling_reference", "gradcam", "perturbations", "security"} <= set(paths)
    for name in ("fooling_reference", "gradcam", "perturbations", "security"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text()
    assert "Tables I/II" in markdown and "Table III" in markdown and "figures/gradcam.png" in markdown
    assert "0.020 ± 0.020" in markdown  # the orthogonal model's |δ|
    assert "| orthogonal-λ3 | white-box PGD fools it no more than the ordinary model | does not hold |" in markdown
    assert "| white-box | 60.0 | 60.0 |" in markdown and "| black-box fools, white-box does not (masking flag) | 0.0 | 1.5 |" in markdown
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 4
    assert not list(finished_run.glob("*.tmp")), "no temporary files left behind"


def test_reproduction_verdicts_follow_the_numbers():
    results = _results()
    verdicts = [v for _, _, v in reproduction_checks(results)]
    assert verdicts == ["reproduced"] * 4
    results["models"][2]["delta"]["abs_mean"] = 0.5  # orthogonal no longer decorrelated
    results["models"][2]["test_accuracy"] = 80.0  # and 17 points worse
    verdicts = [v for _, _, v in reproduction_checks(results)]
    assert verdicts[:2] == ["not reproduced", "not reproduced"]
    assert [v for _, _, v in reproduction_checks({"models": []})] == ["not measured"] * 4


def test_claims_over_seeds_hold_only_when_every_seed_agrees():
    results = _results()
    seed = {"similarity": results["models"], "transfer": results["transfer"], "defenses": results["defenses"]}
    results["per_seed"] = [seed, seed]
    checks = reproduction_checks(results)
    assert [v for _, _, v in checks] == ["reproduced"] * 4 and "reproduced in 2 of 2" in checks[0][1]
    worse = _results()["models"]
    worse[2]["test_accuracy"] = 80.0
    results["per_seed"] = [seed, {**seed, "similarity": worse}]
    assert [v for _, _, v in reproduction_checks(results)][1] == "inconclusive over seeds"


def test_ranges_over_seeds_are_printed_beside_the_means(finished_run):
    results = json.loads((finished_run / "results.json").read_text())
    results["models"][1] |= {"test_accuracy_min": 95.0, "test_accuracy_max": 98.0}
    row = results["security"]["rows"][0]
    row |= {"fooling_percent_min": 20.0, "fooling_percent_max": 40.0}
    (finished_run / "results.json").write_text(json.dumps(results))
    markdown = write_report(finished_run)["markdown"].read_text()
    assert "| 96.50 (95.00–98.00) |" in markdown and "| white-box | 30.0 (20.0–40.0) | 30.0 |" in markdown


def test_side_by_side_table_sets_every_target_on_the_same_attacks():
    security = _results()["security"]
    security["rows"] += [{"target": "ordinary + JPEG-Quality=80", "attack": "white-box", "eps": eps, "fooled": 0,
                          "total": 200, "fooling_percent": 25.0} for eps in (0.1, 0.2)]  # fmt: skip
    header, rows = side_by_side_table(security)
    assert header[:3] == ["target", "transfer from K, ε = 0.1 / 0.2",
                          "white-box PGD (through a defense: BPDA, EOT), ε = 0.1 / 0.2"]  # fmt: skip
    assert rows == [["ordinary", "60.0 / 60.0", "30.0 / 30.0", "– / –", "– / –"],
                    ["orthogonal-λ3", "30.0 / 30.0", "60.0 / 60.0", "– / –", "– / –"],
                    ["ordinary + JPEG-Quality=80", "– / –", "25.0 / 25.0", "– / –", "– / –"]]  # fmt: skip


def test_defense_table_layout():
    header, rows = defense_table(_results()["defenses"])
    assert header[:3] == ["target", "defense", "clean images fooled by the defense alone (%)"]
    assert header[3] == "FGSM fooling at ε = 3 / 5 % (%)"
    assert rows[1][:3] == ["ordinary", "JPEG-Quality=80", "4.0"]
    assert rows[1][3] == "13.0 / 15.0"


def test_missing_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json"):
        write_report(tmp_path)


def test_results_of_another_format_are_refused_before_anything_is_written(tmp_path):
    old = _results()
    del old["format"]  # format 1 had no field, and named percentages fooling_ratio
    (tmp_path / "results.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=f"has format 1, this orthocore reads format {RESULTS_FORMAT}: run the study"):
        write_report(tmp_path)
    old["format"] = 2  # the models' accuracy was val_accuracy, and the defenses were not in the security evaluation
    (tmp_path / "results.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=f"has format 2, this orthocore reads format {RESULTS_FORMAT}"):
        write_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (make test installs it)")
def test_html_renders_in_headless_chromium(finished_run, tmp_path_factory):
    paths = write_report(finished_run)
    profile = tmp_path_factory.mktemp("chromium-profile")
    command = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", paths["html"].as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert total and loaded, "the page's load handler did not run"
    assert int(total.group(1)) == 4 and int(loaded.group(1)) == 4
    # reproduction checks, Tables I/II, Table III, verdicts, all targets side by side, one per target
    assert dom.count("<table>") == 7
    assert "Security evaluation (beyond the paper)" in dom and "does not hold" in dom
