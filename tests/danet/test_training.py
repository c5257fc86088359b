"""Training end to end on the RRSIS-D-layout fixture: single process and Ray Train workers."""

import json
import math
from pathlib import Path

import pytest

from danet.checkpoint import load_checkpoint
from danet.cli import main
from danet.config import PresetError, load_preset
from danet.data.dataset import load_records
from danet.training import TrainOptions, train, train_distributed

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "rrsisd_tiny"
TRAIN_SENTENCES = len(load_records(FIXTURE, "train"))
TEST_SENTENCES = len(load_records(FIXTURE, "test"))


def test_train_writes_checkpoints_history_and_evaluates_each_epoch(tmp_path, train_seed):
    cfg = load_preset("tiny")
    opts = TrainOptions(
        data=FIXTURE, out_dir=tmp_path, epochs=2, batch_size=2, progress=False, seed=train_seed
    )
    summary = train(cfg, opts)
    steps_per_epoch = TRAIN_SENTENCES // 2  # batch 2, incomplete last batch dropped
    assert summary.steps == 2 * steps_per_epoch
    assert summary.epochs == 2
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1.0, 2.0]
    assert all("val/mIoU" in h and "train/total" in h for h in history)
    # Whatever the numbers come out as (seed, CPU), they are sane and best.pt is the best epoch's.
    assert all(0.0 <= h["val/mIoU"] <= 1.0 and math.isfinite(h["train/total"]) for h in history)
    _, info = load_checkpoint(tmp_path / "last.pt")
    assert info.step == summary.steps
    assert info.extra["options"]["batch_size"] == 2
    _, best = load_checkpoint(tmp_path / "best.pt")
    assert best.metrics["val/mIoU"] == summary.best_miou == max(h["val/mIoU"] for h in history)


def test_max_steps_stops_early(tmp_path):
    opts = TrainOptions(data=FIXTURE, out_dir=tmp_path, epochs=5, max_steps=3, batch_size=2, progress=False)
    assert train(load_preset("tiny"), opts).steps == 3


def test_cli_train_then_eval_prints_the_standard_table(tmp_path, capsys, train_seed):
    assert main(["train", "--config", "tiny", "--data", str(FIXTURE), "--out", str(tmp_path),
                 "--epochs", "1", "--batch-size", "2", "--seed", str(train_seed)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "last.pt"), "--data", str(FIXTURE),
                 "--split", "test", "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8", "Pr@0.9", "oIoU", "mIoU", "n"}
    assert summary["n"] == TEST_SENTENCES
    assert (
        main(["eval", "--checkpoint", str(tmp_path / "last.pt"), "--data", str(FIXTURE), "--split", "test"])
        == 0
    )
    table = capsys.readouterr().out
    assert "| tiny / test / all |" in table
    assert "oIoU" in table


def test_train_set_overrides_reach_the_saved_config(tmp_path):
    argv = ["train", "--config", "tiny", "--data", str(FIXTURE), "--out", str(tmp_path), "--max-steps", "1",
            "--batch-size", "2", "--no-val", "--set", "alignment.agent.enabled=false",
            "--set", "optim.lr=0.001"]  # fmt: skip
    assert main(argv) == 0
    _, info = load_checkpoint(tmp_path / "last.pt")
    assert info.config.alignment.agent.enabled is False
    assert info.config.alignment.affinity.enabled is True
    assert info.config.optim.lr == 0.001


def test_bad_override_names_the_field():
    with pytest.raises(PresetError, match=r"alignment\.agent\.num_agents"):
        load_preset("tiny", ["alignment.agent.num_agents=7"])
    with pytest.raises(PresetError, match=r"expected dotted\.key=value"):
        load_preset("tiny", ["alignment.agent.enabled"])


def test_eval_refuses_a_checkpoint_of_another_preset(tmp_path):
    train(load_preset("tiny"), TrainOptions(data=FIXTURE, out_dir=tmp_path, max_steps=1, batch_size=2,
                                            progress=False, val_split=None))  # fmt: skip
    with pytest.raises(SystemExit, match="holds a 'tiny' model"):
        main(["eval", "--checkpoint", str(tmp_path / "last.pt"), "--config", "lite", "--data", str(FIXTURE)])


@pytest.mark.slow
@pytest.mark.integration
def test_ray_train_data_parallel_on_two_cpu_workers(ray_local, tmp_path):
    cfg = load_preset("tiny")
    opts = TrainOptions(data=FIXTURE, out_dir=tmp_path, epochs=2, batch_size=2, progress=False)
    summary = train_distributed(cfg, opts, num_workers=2)
    # DistributedSampler gives each worker half of the sentences.
    assert summary.steps == 2 * ((TRAIN_SENTENCES // 2) // 2)
    assert summary.epochs == 2
    _, info = load_checkpoint(tmp_path / "last.pt")
    assert info.step == summary.steps
    assert (tmp_path / "ray").is_dir()  # Ray Train's run folder with the reported checkpoints
