"""The accelerator benchmarks run end to end on a CPU (their figures come from a GPU)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, cli_env

pytestmark = pytest.mark.slow


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_loop_efficiency_ends_with_one_json_line_of_loop_step_and_ratio():
    out = _run("bench/loop_efficiency.py", "--width", "0.1", "--train-limit", "512",
               "--epochs", "2", "--steps", "4", "--batch-size", "64")
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["loop_images_per_s"] > 0 and facts["step_images_per_s"] > 0
    assert facts["ratio"] == pytest.approx(facts["loop_images_per_s"] /
                                           facts["step_images_per_s"], rel=0.01)


def test_loop_efficiency_times_every_baseline_and_loop_variant_when_asked():
    out = _run("bench/loop_efficiency.py", "--width", "0.1", "--train-limit", "512",
               "--epochs", "2", "--steps", "4", "--batch-size", "64", "--cpu-devices", "1",
               "--steps-per-dispatch", "2", "--all-baselines", "--variants")
    variants, facts = (json.loads(line) for line in out.strip().splitlines()[-2:])
    for key in ("step_queued_images_per_s", "chunk_queued_images_per_s"):
        assert facts[key] > 0, key
    assert list(variants["loop_variants_images_per_s"]) == [
        "as configured", "without mid-epoch checkpoints", "chunks of 10 steps",
        "chunks of 10 steps, without mid-epoch checkpoints"]
    assert min(variants["loop_variants_images_per_s"].values()) > 0
    assert facts["ratio_queued"] == pytest.approx(facts["loop_images_per_s"] /
                                                  facts["step_queued_images_per_s"], rel=0.01)


def test_accelerator_script_smoke_run_prints_its_benchmarks_section(tmp_path):
    target = tmp_path / "BENCHMARKS.md"
    out = _run("bench/accelerator.py", "--smoke", "--append", str(target), "--trace",
               str(tmp_path / "trace"), "--seeds", "2", "--candidates", "--full")
    assert (tmp_path / "trace" / "loop_trace.json.gz").stat().st_size > 1000
    section = target.read_text()
    assert section.strip() in out
    assert "## Accelerator run: cpu" in section
    for row in ("Installed versions inside pyproject's ranges: all",
                "loop / bare step, mesh", "loop / bare step, pmap",
                "fast preset, cold compilation cache", "fast preset, warm compilation cache",
                "fast, label smoothing 0.1", "fast preset, bfloat16",
                "fast preset, --deterministic",
                "default recipe as shipped (60,000 images), seed 1", "(exported: ",
                "exported test accuracy over 2 seed(s)", "fast recipe chosen on validation",
                "float32 / bfloat16", "one device -> 8 on paper", "1 step per dispatch",
                "without mid-epoch checkpoints: ",
                "this script: the core phases"):
        assert row in section, row
    assert "FAILED" not in section and "not run" not in section


def test_accelerator_phases_past_the_deadline_are_reported_as_not_run():
    from bench.accelerator import Phases, markdown

    facts = {"argv": []}
    phases = Phases(facts, None, deadline=100.0)
    assert phases.time_for("pytest", 60)
    assert not phases.time_for("default recipe, seed 1", 150)
    assert "| default recipe, seed 1 | not run: " in markdown(facts)
    assert "pytest" not in facts["skipped"]


@pytest.mark.parametrize("folder, recipe", [("hard_numbers", "first"),
                                            ("hard_numbers_2", "second"),
                                            ("hard_numbers_3", "third"),
                                            ("hard_numbers_4", "fourth"),
                                            ("hard_numbers_5", "fifth"),
                                            ("hard_numbers_6", "sixth"),
                                            ("hard_numbers_7", "seventh"),
                                            ("hard_numbers_8", "eighth"),
                                            ("hard_numbers_9", "ninth"),
                                            ("hard_numbers_10", "tenth"),
                                            ("hard_numbers_11", "eleventh"),
                                            ("hard_numbers_12", "twelfth")])
def test_hard_numbers_report_sets_are_reproduced_from_their_seeds(tmp_path, mnist_dir, folder,
                                                                 recipe):
    """Each committed report set is what `--write-report-set --recipe` makes: same numbers,
    same pictures (to JPEG rounding across Pillow/libjpeg builds)."""
    import csv

    import numpy as np
    from PIL import Image

    _run("bench/hard_numbers.py", "--data-dir", str(mnist_dir), "--write-report-set",
         str(tmp_path), "--report-size", "3", "--recipe", recipe)
    committed = ROOT / "tests" / "data" / folder
    with open(tmp_path / "labels.csv") as f, open(committed / "labels.csv") as g:
        made, kept = list(csv.DictReader(f)), list(csv.DictReader(g))[:3]
    assert made == kept
    for row in made:
        a = np.asarray(Image.open(tmp_path / row["file"]).convert("L"), np.float32)
        b = np.asarray(Image.open(committed / row["file"]).convert("L"), np.float32)
        assert a.shape == b.shape and np.abs(a - b).mean() < 2.0, row


def test_device_busy_reads_busy_share_and_gaps_of_device_streams(tmp_path):
    """The trace summary of `loop_efficiency.py --trace` (on a CPU the trace has no device
    streams, so it is checked on a made-up trace): overlapping kernels count once, host events
    not at all."""
    import gzip

    from bench.loop_efficiency import device_busy

    meta = lambda pid, name: {"ph": "M", "name": "process_name", "pid": pid,
                              "args": {"name": name}}
    kernel = lambda pid, ts, dur: {"ph": "X", "name": "k", "pid": pid, "tid": 1, "ts": ts,
                                   "dur": dur}
    events = [meta(1, "/host:CPU"), meta(2, "/device:GPU:0"), kernel(1, 0, 5000),
              kernel(2, 100, 300), kernel(2, 200, 300), kernel(2, 700, 100),
              kernel(2, 1000, 100)]
    trace = tmp_path / "t.json.gz"
    with gzip.open(trace, "wt") as f:
        json.dump({"traceEvents": events}, f)
    # Busy 100-500, 700-800, 1000-1100 of the window 100-1100: 600 of 1000 us.
    assert device_busy(trace) == {"device_events": 4, "window_ms": 1.0, "device_busy": 0.6,
                                  "device_busy_between_pauses": 0.6,
                                  "largest_gaps_ms": [0.2, 0.2], "gaps_over_100us": 2}
    # A pause of 398.9 ms (a compilation) counts in the window, not between pauses.
    with gzip.open(trace, "wt") as f:
        json.dump({"traceEvents": [*events, kernel(2, 400_000, 400)]}, f)
    summary = device_busy(trace)
    assert summary["device_busy_between_pauses"] == round(1000 / 1400, 3)  # 1100 - 100 + 400.
    assert summary["device_busy"] == round(1000 / 400_300, 3)
    with gzip.open(trace, "wt") as f:
        json.dump({"traceEvents": events[:1] + events[2:3]}, f)
    assert device_busy(trace) == {"device_events": 0}


def test_touching_pairs_are_seeded_mnist_format_images_of_two_digits():
    import numpy as np

    from bench.pair_doubt import touching_pairs
    from hdr_jax import data

    # Each "digit" a 14x14 square: two of them side by side are wider than tall, one is not.
    squares = np.zeros((4, 28, 28), np.uint8)
    squares[:, 7:21, 7:21] = 255
    train = data.Split(squares, np.arange(4, dtype=np.int32))
    pairs = touching_pairs(train, 5, seed=3)
    assert pairs.shape == (5, 28, 28) and pairs.dtype == np.uint8
    np.testing.assert_array_equal(pairs, touching_pairs(train, 5, seed=3))
    for image in pairs:  # Fitted into 20x20 and centred, as MNIST digits are.
        rows, cols = np.nonzero(image.any(1))[0], np.nonzero(image.any(0))[0]
        assert cols[-1] - cols[0] + 1 == 20 and rows[-1] - rows[0] + 1 < 20
        assert not image[:4].any() and not image[:, :4].any()


def test_hard_numbers_reads_each_tuning_seed_and_their_total(mnist_dir):
    """`--tuning-seeds 0 5`: a row per seed (seed 0 the same numbers as without the flag)
    and a row that adds them up."""
    def rows(*flags):
        out = _run("bench/hard_numbers.py", "--data-dir", str(mnist_dir), "--numbers", "4",
                   "--framed", "0", *flags)
        return {line[:36].strip(): [float(v.rstrip("%")) for v in line[36:].split()]
                for line in out.splitlines() if line.startswith("  tuning generator")}

    alone, both = rows(), rows("--tuning-seeds", "0", "5")
    assert list(both) == ["tuning generator (seed 0)", "tuning generator (seed 5)",
                          "tuning generator, those seeds"]
    assert alone["tuning generator (seed 0)"] == both["tuning generator (seed 0)"]
    zero, five, total = both.values()
    assert [a + b for a, b in zip(zero[1:], five[1:], strict=True)] == total[1:]
    assert total[-1] == 8 and abs(total[0] - (zero[0] + five[0]) / 2) < 0.01


def test_hard_numbers_tuning_effects_every_draws_from_all_of_them(mnist_dir):
    """`--tuning-effects every` is every effect of UNSEEN to UNSEEN_12 (the twelfth set's
    recipe with `--tuning-chance 1/24`), named as such; an unknown name is a usage error
    that lists the effects."""
    out = _run("bench/hard_numbers.py", "--data-dir", str(mnist_dir), "--numbers", "3",
               "--framed", "0", "--tuning-effects", "every", "--tuning-chance", "0.5")
    assert "  tuning generator (seed 0) + every effect (50% each)" in out
    bad = subprocess.run([sys.executable, "bench/hard_numbers.py", "--data-dir", str(mnist_dir),
                          "--tuning-effects", "everything"], capture_output=True, text=True,
                         cwd=ROOT, env=cli_env())
    assert bad.returncode == 2 and "--tuning-effects: choose from" in bad.stderr


def test_hard_numbers_narrow_sets_the_cut_where_a_narrow_digit_ends(mnist_dir):
    """`--narrow F` reads with `preprocess.NARROW` = F, and `--narrow 0` with no such cut:
    the header says which."""
    from hdr_jax import preprocess

    def header(*flags):
        out = _run("bench/hard_numbers.py", "--data-dir", str(mnist_dir), "--numbers", "2",
                   "--framed", "0", *flags)
        return out.splitlines()[0]

    assert header().endswith(f", and {preprocess.NARROW} in from a piece's ends")
    assert header("--narrow", "0.3").endswith(", and 0.3 in from a piece's ends")
    assert header("--narrow", "0").endswith(", no narrow cut")


def test_unseen_effects_ablate_one_at_a_time():
    """`hard_number_upload(unseen=...)`: True is every effect of UNSEEN (the first report
    set's recipe), a set of names adds only those, and each name, of UNSEEN to UNSEEN_12,
    changes the picture (digits labelled 1, 7, 1: "continental" changes only those)."""
    import numpy as np

    from bench.hard_uploads import EVERY_EFFECT, UNSEEN, hard_number_upload

    digits = [np.pad(np.full((20, 8), 255, np.uint8), 4)] * 3
    made = lambda unseen: hard_number_upload(digits, np.random.default_rng(3), unseen,
                                             labels=[1, 7, 1])
    assert made(True) == made(frozenset(UNSEEN)) != made(False) == made(frozenset())
    alone = {name: made(frozenset({name})) for name in EVERY_EFFECT}
    assert len({made(False), *alone.values()}) == len(EVERY_EFFECT) + 1


def test_stroke_widths_place_plain_lines_between_fine_and_bold(mnist_dir):
    """`--stroke-widths` (where `preprocess.BOLD`, `THIN_TO` and `FINE` come from): MNIST's
    median stroke is `THIN_TO` of a digit's height and its 90th percentile `BOLD`, to 0.01; a
    plain tuning line's median lies between `FINE` and `BOLD`, a marker line's over `BOLD`
    and a fine pen's under `FINE`."""
    from hdr_jax import preprocess

    out = _run("bench/hard_numbers.py", "--data-dir", str(mnist_dir), "--stroke-widths",
               "--numbers", "12")
    rows = {line[:40].strip(): [float(v) for v in line[40:].split()]
            for line in out.splitlines() if line.startswith(("  MNIST", "  tuning"))}
    mnist, plain, marker, fine, _ = rows.values()
    assert abs(mnist[2] - preprocess.THIN_TO) < 0.01 and abs(mnist[3] - preprocess.BOLD) < 0.01
    assert fine[2] < preprocess.FINE < plain[2] < preprocess.BOLD < marker[2]


def test_a_photo_stored_turned_decodes_upright():
    """`turned` (UNSEEN_6): the pixels are stored turned and the EXIF orientation turns them
    back, so the reader sees the picture as it was taken (to JPEG rounding)."""
    import io

    import numpy as np
    from PIL import Image

    from bench.hard_uploads import _jpeg
    from hdr_jax import preprocess

    picture = np.zeros((60, 100), np.uint8)
    picture[10:50, 20:30] = 255  # A bar at the left, taller than wide.
    upright = preprocess.decode(_jpeg(Image.fromarray(picture), 95)).grey
    for orientation in (3, 6, 8):
        raw = _jpeg(Image.fromarray(picture), 95, orientation)
        assert Image.open(io.BytesIO(raw)).size != (100, 60) or orientation == 3
        assert np.abs(preprocess.decode(raw).grey - upright).mean() < 0.01


def test_the_third_recipe_draws_each_effect_for_each_number(monkeypatch):
    """`make_numbers(chance=0.5)` (the third report set): each number gets its own seeded
    draw of the effects, about half of them; `chance=1` gives every number all of them."""
    import numpy as np

    import bench.hard_numbers as hard_numbers
    from hdr_jax.data import Split

    drawn = []
    monkeypatch.setattr(hard_numbers, "hard_number_upload",
                        lambda digits, rng, unseen, labels: drawn.append(unseen) or b"")
    digits = Split(np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.int32))
    everything = hard_numbers.REPORT_RECIPES["third"][1]
    assert len(everything) == 12
    hard_numbers.make_numbers(digits, 40, 77, range(10), everything, chance=0.5)
    first, drawn[:] = list(drawn), []
    hard_numbers.make_numbers(digits, 40, 77, range(10), everything, chance=0.5)
    assert drawn == first  # Seeded.
    assert all(d <= everything for d in first) and len(set(first)) > 30
    assert 4 <= np.mean([len(d) for d in first]) <= 8
    drawn.clear()
    hard_numbers.make_numbers(digits, 5, 77, range(10), everything)
    assert drawn == [everything] * 5


def test_accelerator_script_with_skip_core_runs_only_what_its_flags_ask_for(tmp_path):
    target = tmp_path / "BENCHMARKS.md"
    _run("bench/accelerator.py", "--smoke", "--skip-core", "--seeds", "2",
         "--append", str(target))
    section = target.read_text()
    assert "default recipe as shipped (60,000 images), seed 1" in section
    for absent in ("loop / bare step", "fast preset, cold", "seed 0", "PyTorch",
                   "the core phases"):
        assert absent not in section, absent


def test_candidate_models_are_trained_side_by_side_exported_and_packed(tmp_path):
    import tarfile

    from hdr_jax.inference import Predictor

    target, keep = tmp_path / "BENCHMARKS.md", tmp_path / "exports"
    _run("bench/accelerator.py", "--smoke", "--skip-core", "--models", "shipped-s0",
         "class11-spans4k-s0", "--parallel", "2", "--keep-exports", str(keep),
         "--append", str(target))
    section = target.read_text()
    for name in ("shipped-s0", "class11-spans4k-s0"):
        assert f"candidate model `{name}`" in section, name
        with tarfile.open(keep / f"{name}.tar.gz") as tar:
            tar.extractall(tmp_path, filter="data")
    assert "--line-spans 4000 --num-classes 11" in section and "2 trained at a time" in section
    for name, classes in (("shipped-s0", 10), ("class11-spans4k-s0", 11)):
        predictor = Predictor.from_checkpoint(tmp_path / name)
        assert predictor.predict(np.zeros((1, 28, 28))).shape == (1, classes), name
        assert (tmp_path / name / "model.onnx").stat().st_size > 0


def test_fast_preset_stays_unless_a_candidate_beats_it_by_more_than_the_standard_error():
    from bench.accelerator import PRESET_STAYS, choose_fast

    def run(label, val, seconds=2.0):
        return {"label": label, "final_val_accuracy": val, "training_seconds": seconds,
                "validation_size": 5000}

    preset = ("preset cold", "preset warm")
    runs = [run("preset cold", 0.9940), run("preset warm", 0.9930)]  # Mean 99.35%.
    # 0.9944 is within 0.16 points of 0.9935: a tie; 0.9952 beats it, 0.9960 too slow.
    assert choose_fast([*runs, run("a", 0.9944)], preset) == PRESET_STAYS
    assert choose_fast([*runs, run("a", 0.9944), run("b", 0.9952)], preset) == "b"
    assert choose_fast([*runs, run("c", 0.9960, seconds=3.5)], preset) == PRESET_STAYS
    assert choose_fast([run("a", 0.9944), run("b", 0.9952, 2.5), run("d", 0.9952, 2.4)],
                       preset) == "d"


def test_separators_group_an_amounts_digits_from_the_right():
    """`separator` (UNSEEN_7): seven digits get a thousands mark after the first and fourth
    ("9,018,609") or a decimal mark before the last two ("90186.09"); four, the decimal mark
    ("12.35"); two, one between them ("1,5"); either mark is drawn."""
    import numpy as np

    from bench.hard_uploads import _separators

    rng = np.random.default_rng(0)
    assert {tuple(sorted(_separators(7, rng))) for _ in range(30)} == {(0, 3), (4,)}
    assert {tuple(_separators(4, rng)) for _ in range(10)} == {(1,)}
    assert {tuple(_separators(2, rng)) for _ in range(10)} == {(0,)}
    assert {m for _ in range(30) for m in _separators(5, rng).values()} == {",", "."}


def test_a_paper_clip_placed_at_or_past_the_pictures_foot_is_drawn_without_failing(
        monkeypatch):
    """`_paper_clip` centred ever further below a picture 40 rows tall (mix seed 24 drew one
    just past it, and the generator failed): each picture comes back whole, and once the
    clip lies wholly past the foot, unchanged."""
    import bench.hard_uploads as hard_uploads

    rgb = np.ones((40, 200, 3), np.float32)
    outs = []
    for below in range(40, 160, 2):
        monkeypatch.setattr(hard_uploads, "_near", lambda number, rng, y=below: (y, 100.0))
        outs.append(hard_uploads._paper_clip(rgb, (10, 20, 20, 160), np.random.default_rng(0)))
    assert all(out.shape == rgb.shape for out in outs)
    assert (outs[0] < 1).any()
    np.testing.assert_array_equal(outs[-1], rgb)
