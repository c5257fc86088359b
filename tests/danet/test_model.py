"""DANet architecture: presets, forward/backward of tiny and lite on CPU, size handling, alignment switches,
and a tiny model overfitting a handful of synthetic referring samples."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import yaml

from danet.config import DANetConfig, PresetError, config_dir, list_presets, load_preset
from danet.losses import DANetLoss, affinity_loss
from danet.model import DANet, DANetOutput, build_model
from danet.model.alignment import AFFINITY_PREFIX


def _without_alignment(cfg: DANetConfig) -> DANetConfig:
    alignment = cfg.alignment.model_copy(
        update={
            "affinity": cfg.alignment.affinity.model_copy(update={"enabled": False}),
            "agent": cfg.alignment.agent.model_copy(update={"enabled": False}),
        }
    )
    return cfg.model_copy(update={"alignment": alignment})


@pytest.fixture(scope="module")
def tiny_cfg() -> DANetConfig:
    return load_preset("tiny")


@pytest.fixture
def tiny(tiny_cfg: DANetConfig) -> DANet:
    torch.manual_seed(0)
    return build_model(tiny_cfg)


def _batch(model: DANet, height: int, width: int, texts: list[str]):
    images = torch.randn(len(texts), 3, height, width)
    masks = torch.zeros(len(texts), height, width, dtype=torch.long)
    masks[:, height // 4 : height // 2, width // 4 : width // 2] = 1
    return images, masks, *model.tokenize(texts)


# --- presets ---


def test_presets_are_listed_and_load():
    assert {"base", "lite", "tiny"} <= set(list_presets())
    base = load_preset("base")
    assert base.backbone.swin is not None
    assert (base.backbone.swin.embed_dim, base.backbone.swin.depths) == (128, (2, 2, 18, 2))
    assert (base.backbone.swin.num_heads, base.backbone.swin.window_size) == ((4, 8, 16, 32), 12)
    assert (base.text.hidden, base.text.layers, base.input_size) == (768, 12, 480)
    assert load_preset("lite").backbone.kind == "efficientnet_lite0"


def test_invalid_preset_value_names_the_field(tmp_path):
    data = yaml.safe_load(config_dir().joinpath("presets/tiny.yaml").read_text())
    data["backbone"]["swin"]["depths"] = [1, 1, 2]
    data["alignment"]["agent"]["num_agents"] = 5
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PresetError) as err:
        load_preset(path)
    assert "backbone.swin.depths" in str(err.value)
    assert "alignment.agent.num_agents" in str(err.value)
    assert "perfect square" in str(err.value)


def test_unknown_key_and_unknown_preset_are_errors(tmp_path, monkeypatch):
    path = tmp_path / "presets" / "typo.yaml"
    path.parent.mkdir()
    data = load_preset("tiny").model_dump(mode="json")
    data["decoder"]["hiden"] = 8
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DANET_CONFIG_DIR", str(tmp_path))
    assert list_presets() == ["typo"]
    with pytest.raises(PresetError, match=r"decoder\.hiden"):
        load_preset("typo")
    with pytest.raises(PresetError, match="unknown preset 'nope'"):
        load_preset("nope")


def test_input_size_must_be_a_multiple_of_32(tiny_cfg):
    data = tiny_cfg.model_dump(mode="json") | {"input_size": 100}
    with pytest.raises(ValueError, match="multiple of 32"):
        DANetConfig.model_validate(data)


# --- tokenizer ---


def test_tokenize_pads_and_truncates_to_max_tokens(tiny):
    long_text = " ".join(["left"] * 40)
    ids, mask = tiny.tokenize(["the small ship on the left", long_text])
    assert ids.shape == mask.shape == (2, 20)
    assert ids.dtype == mask.dtype == torch.long
    assert mask[0].sum() == 8  # [CLS] + 6 words + [SEP]
    assert mask[0, :8].all()
    assert not mask[0, 8:].any()
    assert (ids[0, 8:] == 0).all()
    assert mask[1].all()
    unk = tiny.text.tokenizer.unk_token_id
    assert unk not in tiny.tokenize(["zeppelin hovering above"])[0]


# --- forward / backward ---


def test_tiny_forward_backward_reaches_every_trainable_parameter(tiny, tiny_cfg):
    images, masks, ids, mask = _batch(tiny, 64, 64, ["left square", "the right square"])
    out = tiny(images, ids, mask)
    loss, parts = DANetLoss(tiny_cfg)(out, masks)
    loss.backward()
    assert isinstance(out, DANetOutput)
    assert out.logits.shape == (2, 2, 64, 64)
    assert torch.isfinite(loss)
    assert set(parts) == {"ce", "dice", "affinity", "agent", "total"}
    assert parts["total"] == pytest.approx(loss.item())
    no_grad = [
        n for n, p in tiny.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert no_grad == []
    for module in (
        tiny.text,
        tiny.encoder.visual,
        tiny.encoder.fusions,
        tiny.affinity,
        tiny.agent,
        tiny.decoder,
    ):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize(("height", "width"), [(64, 96), (96, 64), (128, 128), (160, 96)])
def test_any_multiple_of_32_works(tiny, height, width):
    images, _, ids, mask = _batch(tiny, height, width, ["left square"])
    tiny.eval()
    with torch.no_grad():
        out = tiny(images, ids, mask)
    assert out.logits.shape == (1, 2, height, width)
    assert out.aux["affinity.3"].shape[-2:] == (height // 32, width // 32)
    assert out.aux["agent.attention"].shape == (1, 4, height // 32, width // 32)
    assert torch.isfinite(out.logits).all()


def test_rejects_sizes_that_are_not_multiples_of_32(tiny):
    _, _, ids, mask = _batch(tiny, 64, 64, ["left square"])
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny(torch.randn(1, 3, 64, 80), ids, mask)


def test_alignment_switches_off_cleanly(tiny, tiny_cfg):
    plain = build_model(_without_alignment(tiny_cfg))
    assert plain.affinity is None
    assert plain.agent is None
    images, masks, ids, mask = _batch(plain, 64, 64, ["left square", "right square"])
    out = plain(images, ids, mask)
    assert out.aux == {}
    _, parts = DANetLoss(plain.cfg)(out, masks)
    assert set(parts) == {"ce", "dice", "total"}
    alignment_params = sum(p.numel() for m in (tiny.affinity, tiny.agent) for p in m.parameters())
    assert alignment_params > 0
    total = sum(p.numel() for p in tiny.parameters())
    assert sum(p.numel() for p in plain.parameters()) == total - alignment_params


def _with_refinement(cfg: DANetConfig, width: int = 8) -> DANetConfig:
    return cfg.model_copy(update={"decoder": cfg.decoder.model_copy(update={"refine": width})})


def test_refinement_starts_as_the_unrefined_decoder_and_then_learns(tiny, tiny_cfg):
    """A checkpoint trained without the refinement step loads into a refined model and, before any
    training, gives the same logits (the correction starts at zero); one step later it corrects them."""
    refined = build_model(_with_refinement(tiny_cfg))
    missing = refined.load_state_dict(tiny.state_dict(), strict=False).missing_keys
    assert missing
    assert all(k.startswith("decoder.refinement.") for k in missing)
    tiny.eval()
    refined.eval()
    images, masks, ids, mask = _batch(tiny, 64, 96, ["left square"])
    with torch.no_grad():
        torch.testing.assert_close(refined(images, ids, mask).logits, tiny(images, ids, mask).logits)
    refined.train()
    optimizer = torch.optim.AdamW(refined.decoder.refinement.parameters(), lr=1e-2)
    loss, _ = DANetLoss(refined.cfg)(refined(images, ids, mask), masks)
    loss.backward()
    optimizer.step()
    refined.eval()
    with torch.no_grad():
        after = refined(images, ids, mask).logits
    assert after.shape == (1, 2, 64, 96)
    assert not torch.allclose(after, tiny(images, ids, mask).logits)


def test_refinement_needs_the_stem_map(tiny_cfg):
    decoder = build_model(_with_refinement(tiny_cfg)).decoder
    maps = [torch.randn(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate((16, 32, 64, 128))]
    with pytest.raises(ValueError, match="stem"):
        decoder(maps)


def test_padding_words_do_not_change_the_output(tiny):
    """The word mask must make padded positions irrelevant, whatever their token ids."""
    tiny.eval()
    images, _, ids, mask = _batch(tiny, 64, 64, ["left square"])
    other = ids.clone()
    other[mask == 0] = 7
    with torch.no_grad():
        a, b = tiny(images, ids, mask), tiny(images, other, mask)
    torch.testing.assert_close(a.logits, b.logits)


def test_lite_forward_backward_on_cpu():
    cfg = load_preset("lite")
    model = build_model(cfg)
    images, masks, ids, mask = _batch(model, 128, 128, ["the ship on the left", "small storage tank"])
    out = model(images, ids, mask)
    loss, parts = DANetLoss(cfg)(out, masks)
    loss.backward()
    assert out.logits.shape == (2, 2, 128, 128)
    assert torch.isfinite(loss)
    assert set(parts) == {"ce", "dice", "affinity", "agent", "total"}
    # The preset freezes the whole text tower (text.freeze): it stays as shipped, referenced by checksum.
    assert not any(p.requires_grad for p in model.text.parameters())
    towers = {
        "backbone": model.encoder.visual,
        "fusion": model.encoder.fusions,
        "affinity": model.affinity,
        "agent": model.agent,
        "decoder": model.decoder,
    }
    for name, module in towers.items():
        trainable = [p for p in module.parameters() if p.requires_grad]
        assert trainable, name
        assert all(p.grad is not None for p in trainable), name
        assert sum(p.grad.abs().sum() for p in trainable) > 0, name


# --- learning ---


def _referring_samples(size: int = 64) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Two images, each with two identical squares; the text says which one is meant."""
    images = torch.full((4, 3, size, size), -1.0)
    masks = torch.zeros(4, size, size, dtype=torch.long)
    side, lo, hi = size // 4, size // 8, size - size // 8 - size // 4
    mid = (size - side) // 2
    boxes = {
        "left square": (mid, lo),
        "right square": (mid, hi),
        "top square": (lo, mid),
        "bottom square": (hi, mid),
    }
    texts = list(boxes)
    for i, text in enumerate(texts):
        pair = texts[2 * (i // 2) : 2 * (i // 2) + 2]  # both squares of this image are drawn
        for other in pair:
            y, x = boxes[other]
            images[i, :, y : y + side, x : x + side] = 1.0
        y, x = boxes[text]
        masks[i, y : y + side, x : x + side] = 1
    return images, masks, texts


def _mean_iou(logits: torch.Tensor, masks: torch.Tensor) -> float:
    pred = logits.argmax(1).bool()
    gt = masks.bool()
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return float(torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union)).mean())


def _train(model: DANet, cfg: DANetConfig, images, masks, texts, steps: int) -> list[dict[str, float]]:
    criterion = DANetLoss(cfg)
    ids, mask = model.tokenize(texts)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(steps):
        out = model(images, ids, mask)
        loss, parts = criterion(out, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(parts | {"iou": _mean_iou(out.logits.detach(), masks)})
    return history


# How the toy runs below are judged. A run's exact path differs between CPUs (oneDNN/BLAS kernels) as it
# does between seeds, and the agent loss in particular jumps for a few steps now and then. So a run is
# summed up by its start (the mean of its first 5 steps, which include the jump of the first update) and
# its end (the median of its last 10 steps, which ignores a passing jump), never by two single steps, and
# every threshold leaves a wide margin over seeds 0-9 (`--train-seeds 0-9`; see the README).
STEPS = 60


def _start(history: list[dict[str, float]], key: str) -> float:
    return statistics.fmean(h[key] for h in history[:5])


def _end(history: list[dict[str, float]], key: str) -> float:
    return statistics.median(h[key] for h in history[-10:])


def _trace(history: list[dict[str, float]], key: str) -> str:
    return f"{key}: " + " ".join(f"{h[key]:.3f}" for h in history)


def test_tiny_overfits_a_few_referring_samples(tiny_cfg, train_seed):
    """Two identical squares per image: only the text says which one is meant."""
    torch.manual_seed(train_seed)
    model = build_model(tiny_cfg)
    images, masks, texts = _referring_samples()
    history = _train(model, tiny_cfg, images, masks, texts, steps=STEPS)
    # Over seeds 0-9 the end/start ratio came out at 0.40-0.50 (total) and 0.11-0.15 (ce).
    assert _end(history, "total") < 0.75 * _start(history, "total"), _trace(history, "total")
    assert _end(history, "ce") < 0.5 * _start(history, "ce"), _trace(history, "ce")
    assert history[0]["iou"] < 0.3  # not solved before training
    model.eval()
    with torch.no_grad():
        logits = model(images, *model.tokenize(texts)).logits
        swapped = [texts[1], texts[0], texts[3], texts[2]]  # each image, the other square
        swapped_logits = model(images, *model.tokenize(swapped)).logits
    # A model blind to the words can only mark both squares, IoU 0.5 against either. Over seeds 0-9:
    # 0.82-0.97 with the words, 0.00-0.06 with the other square's words (eval mode: BatchNorm's running
    # statistics, which lag the last steps, cost a seed up to 0.1 against training mode).
    assert _mean_iou(logits, masks) > 0.6
    assert _mean_iou(swapped_logits, masks) < 0.2  # the prediction follows the words


def _position_blind_affinity_loss(masks: torch.Tensor, sizes: list[tuple[int, int]]) -> float:
    """The affinity loss of the best map that ignores where the target is (one logit everywhere)."""
    levels = torch.linspace(-8.0, 8.0, 321)
    per_map = [
        min(affinity_loss(torch.full((len(masks), 1, *size), float(c)), masks, dice=True) for c in levels)
        for size in sizes
    ]
    return float(torch.stack(per_map).mean())


def test_alignment_losses_learn_when_the_target_is_visible(tiny_cfg, train_seed):
    """A white and a gray square, named by colour: both reconstructed alignment losses go down."""
    images = torch.full((4, 3, 64, 64), -1.0)
    masks = torch.zeros(4, 64, 64, dtype=torch.long)
    texts = ["white square", "gray square"] * 2
    layouts = [((8, 8), (36, 36)), ((36, 8), (8, 40))]
    for i, text in enumerate(texts):
        white, gray = layouts[i // 2]
        images[i, :, white[0] : white[0] + 20, white[1] : white[1] + 20] = 1.0
        images[i, :, gray[0] : gray[0] + 20, gray[1] : gray[1] + 20] = 0.0
        y, x = white if text == "white square" else gray
        masks[i, y : y + 20, x : x + 20] = 1
    torch.manual_seed(train_seed)
    model = build_model(tiny_cfg)
    history = _train(model, tiny_cfg, images, masks, texts, steps=STEPS)
    # Agents: the loss falls to under half its start, and well under chance: log 2 is the balanced BCE of
    # a scorer that ignores image and text (logit 0). Over seeds 0-9 the end came out at 0.00-0.38 and
    # end/start at 0.00-0.24; with the agent loss weight at 0 the end is 0.73-3.0 (end/start 0.3-3.0).
    agent_start, agent_end = _start(history, "agent"), _end(history, "agent")
    assert agent_end < 0.5 * agent_start, _trace(history, "agent")
    assert agent_end < 0.75 * math.log(2), _trace(history, "agent")
    # Affinity maps: well below the best map blind to position (1.21 here), whatever their start. Over
    # seeds 0-9 the end came out at 0.70-0.86; with the affinity loss weight at 0 it ends at 3.2-6.4.
    model.eval()
    with torch.no_grad():
        aux = model(images, *model.tokenize(texts)).aux
    sizes = [tuple(v.shape[-2:]) for k, v in aux.items() if k.startswith(AFFINITY_PREFIX)]
    assert len(sizes) == len(tiny_cfg.alignment.affinity.stages)
    blind = _position_blind_affinity_loss(masks, sizes)
    assert _end(history, "affinity") < 0.85 * blind, f"blind {blind:.3f}; {_trace(history, 'affinity')}"
    assert _end(history, "iou") > 0.8, _trace(history, "iou")  # 0.92-0.98 over seeds 0-9
