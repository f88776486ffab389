"""`worldjepa compare`: eval results files side by side, pooled, paired on shared pairs."""

import json

import pytest

from worldjepa.cli import main
from worldjepa.cli.compare import load_results, pool
from worldjepa.metrics import paired_comparison, summarize


@pytest.fixture(scope="module")
def results(small_data_and_run, tmp_path_factory):
    """Two eval seeds of random and oracle on the tiny TwoRoom dataset, each its own file, and one
    with another goal offset."""
    data, _ = small_data_and_run
    root = tmp_path_factory.mktemp("cmp")
    out = {}
    for tag, extra in (("s0", ["--seed", "0"]), ("s1", ["--seed", "1"]), ("far", ["--seed", "0", "--goal-offset", "4"])):
        out[tag] = root / f"{tag}.json"
        args = ["eval", "--data", str(data), "--policy", "random,oracle", "--episodes", "6", "--budget", "4",
                "--goal-offset", "5", *extra, "--json", str(out[tag]), "--no-progress"]
        assert main(args) == 0
    return out


def test_eval_keeps_the_policy_name_and_compare_reads_it_back(results, capsys):
    saved = json.loads(results["s0"].read_text())
    assert [r["policy_name"] for r in saved.values()] == ["random", "oracle"]
    capsys.readouterr()
    assert main(["compare", str(results["s0"])]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "worldjepa/TwoRoom-v0" in line]  # the table, not the pairs
    assert len(rows) == 2
    for line, r in zip(rows, saved.values()):  # the table's rate is the file's
        assert f"{100 * r['summary']['success_rate']:.1f}%" in line
    c = paired_comparison(saved["random"]["records"], saved["oracle"]["records"])
    assert c["shared"] == 6  # one protocol draws the same pairs for both
    assert f"{c['shared']:>6} {c['both']:>5} {c['only_a']:>6} {c['only_b']:>6}" in out


def test_two_seeds_are_named_apart_or_pooled(results, capsys, tmp_path):
    found = load_results([str(results["s0"]), str(results["s1"])])
    assert [name for name, _, _ in found] == ["random", "oracle", "random", "oracle"]
    rows = pool(found)
    assert [name for name, _ in rows] == ["random (2 files)", "oracle (2 files)"]
    for (name, r), policy in zip(rows, ("random", "oracle")):
        both = [rec for _, _, f in found if f["policy_name"] == policy for rec in f["records"]]
        assert r["summary"] == {**summarize(both), "seconds": r["summary"]["seconds"]}
        assert r["summary"]["episodes"] == 12
    # pooled in another order, the pairs still meet: 12 shared, not only those at equal positions
    reverse = pool(load_results([str(results["s1"]), str(results["s0"])]))
    assert paired_comparison(rows[0][1]["records"], reverse[1][1]["records"])["shared"] == 12
    capsys.readouterr()
    assert main(["compare", str(results["s0"]), str(results["s1"])]) == 0
    out = capsys.readouterr().out
    assert "random (s0.json)" in out and "oracle (s1.json)" in out
    old = tmp_path / "old.json"  # written before results named their policy: pooled with the new by identity
    old.write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "policy_name"}
                               for k, v in json.loads(results["s1"].read_text()).items()}))
    assert [name for name, _ in pool(load_results([str(results["s0"]), str(old)]))] == ["random (2 files)",
                                                                                        "oracle (2 files)"]


def test_paired_comparison_matches_pairs_not_positions():
    recs = [{"episode": e, "start": 0, "goal_state": [e], "success": e % 2 == 0} for e in range(4)]
    flipped = [{**r, "success": not r["success"]} for r in recs]
    c = paired_comparison(recs, list(reversed(flipped)))
    assert (c["shared"], c["only_a"], c["only_b"], c["both"]) == (4, 2, 2, 0)
    assert paired_comparison(recs, recs[:1])["shared"] == 1


def test_compare_bad_input_is_one_line_with_exit_2(results, tmp_path, capsys):
    s0 = str(results["s0"])
    before = results["s0"].read_bytes()
    not_results = tmp_path / "x.json"
    not_results.write_text('{"a": 1}')
    cases = [([s0, str(results["far"])], "goal_offset"), ([s0, str(not_results)], "not a results file"),
             ([s0, s0], "given twice"), ([str(tmp_path / "none.json")], "no such results file"),
             ([s0, "--plot", s0], "is one of the results files"), ([s0, "--plot", str(tmp_path / "p.svg")], ".png")]
    for args, what in cases:
        capsys.readouterr()
        assert main(["compare", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert what in err and len(err.splitlines()) == 1, err
    assert results["s0"].read_bytes() == before


def test_compare_plot(results, tmp_path):
    png = tmp_path / "success.png"
    assert main(["compare", str(results["s0"]), str(results["s1"]), "--pool", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_reader_that_goes_away_loses_no_output_file(results, tmp_path):
    """`worldjepa ... | head`: once the pipe's reader has gone, the command still writes its files and
    ends with its own status, without a traceback or an 'internal error'."""
    import subprocess
    import sys

    png = tmp_path / "success.png"
    proc = subprocess.Popen([sys.executable, "-m", "worldjepa", "compare", str(results["s0"]), str(results["s1"]),
                             "--plot", str(png)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command prints anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err.lower() and "Exception" not in err, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
