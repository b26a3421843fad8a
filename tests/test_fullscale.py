"""Full mode (issue 6): the CIFAR-10 binary reader, the ResNet and the Chapter 4 experiment on a tiny config.

Nothing here downloads: the CIFAR-10 tests write small binary files of the official format, and
the experiment runs on its synthetic, CIFAR-shaped stand-in.
"""

import copy
import hashlib
import io
import tarfile
import urllib.request

import numpy as np
import pytest
import torch

from ntcourse import data, experiments, models

RECORD = 3073


def _write_cifar(folder, n_per_file=3, n_test=2, seed=0):
    """Write the six binary batch files with random records; return the (labels, images) written per file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in [(f, n_per_file) for f in data.CIFAR10_TRAIN_FILES] + [(data.CIFAR10_TEST_FILES[0], n_test)]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], images], axis=1).tobytes())
        written[name] = (labels, images)
    return written


def _expected(images, train_images):
    """Reference normalisation: CHW bytes / 255, standardised by the per-channel training mean and std."""
    train = np.concatenate(train_images).reshape(-1, 3, 1024) / 255.0
    mean = train.mean(axis=(0, 2))
    std = train.transpose(1, 0, 2).reshape(3, -1).std(axis=1, ddof=1)
    x = images.reshape(-1, 3, 32, 32) / 255.0
    return (x - mean[None, :, None, None]) / std[None, :, None, None]


def test_cifar10_reads_binary_records_in_chw_order_with_train_statistics(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    written = _write_cifar(folder)
    train = data.cifar10(tmp_path, "train")
    test = data.cifar10(tmp_path, "test", dtype=torch.float64)
    train_images = [written[f][1] for f in data.CIFAR10_TRAIN_FILES]
    assert train.x.shape == (15, 3, 32, 32) and train.x.dtype == torch.float32
    assert train.y.dtype == torch.long and test.x.shape == (2, 3, 32, 32)
    labels = np.concatenate([written[f][0] for f in data.CIFAR10_TRAIN_FILES])
    assert train.y.tolist() == labels.tolist()
    assert test.y.tolist() == written["test_batch.bin"][0].tolist()
    np.testing.assert_allclose(train.x.numpy(), _expected(np.concatenate(train_images), train_images), atol=1e-5)
    # the test split is standardised with the *training* statistics
    np.testing.assert_allclose(test.x.numpy(), _expected(written["test_batch.bin"][1], train_images), atol=1e-12)
    torch.testing.assert_close(train.x.double().mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.x.double().transpose(0, 1).reshape(3, -1).std(1), torch.ones(3, dtype=torch.float64),
                               atol=1e-5, rtol=0)
    # channel-major layout: byte 1 is red (row 0, col 1), byte 1024 + 32 is green (row 1, col 0)
    raw = train_images[0][0].astype(np.float64) / 255.0
    mean = np.concatenate(train_images).reshape(-1, 3, 1024).mean(axis=(0, 2)) / 255.0
    std = (np.concatenate(train_images).reshape(-1, 3, 1024).transpose(1, 0, 2).reshape(3, -1) / 255.0).std(axis=1, ddof=1)
    assert train.x[0, 0, 0, 1].item() == pytest.approx((raw[1] - mean[0]) / std[0], abs=1e-5)
    assert train.x[0, 1, 1, 0].item() == pytest.approx((raw[1024 + 32] - mean[1]) / std[1], abs=1e-5)
    assert train.x[0, 2, 31, 31].item() == pytest.approx((raw[3071] - mean[2]) / std[2], abs=1e-5)
    # a root that is the batch folder itself, and limit
    assert torch.equal(data.cifar10(folder, "train", limit=4).x, train.x[:4])


def test_cifar10_default_root_and_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.setenv("NTCOURSE_DATA", str(tmp_path / "store"))
    assert data.data_dir() == tmp_path / "store"
    with pytest.raises(FileNotFoundError) as err:
        data.cifar10()
    message = str(err.value)
    assert data.CIFAR10_URL in message and str(tmp_path / "store" / "cifar-10-batches-bin") in message
    assert "NTCOURSE_DATA" in message and "data_batch_1.bin" in message and "download_cifar10" in message
    monkeypatch.delenv("NTCOURSE_DATA")
    assert str(data.data_dir()).endswith(".cache/ntcourse/data")
    with pytest.raises(ValueError, match="split='valid' is not accepted"):
        data.cifar10(tmp_path, "valid")


def test_cifar10_rejects_truncated_and_foreign_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write_cifar(folder)
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"data_batch_3.bin has 9119 bytes, which is not a positive multiple of the 3073"):
        data.cifar10(tmp_path)
    path.write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(ValueError, match="label 12 outside 0..9"):
        data.cifar10(tmp_path)


def _tarball(tmp_path, extra=()):
    source = tmp_path / "source" / "cifar-10-batches-bin"
    _write_cifar(source)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for f in sorted(source.iterdir()):
            tar.add(f, arcname=f"cifar-10-batches-bin/{f.name}")
        for name, payload in extra:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(buffer.getvalue())
    return archive


def test_download_checks_md5_and_extracts_only_the_batch_files(tmp_path, monkeypatch):
    archive = _tarball(tmp_path, extra=[("../escape.bin", b"x"), ("cifar-10-batches-bin/readme.html", b"<html>")])
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="has MD5 .* not c32a1d4ab5d03f1284b67883e8d87530"):
        data.download_cifar10(root, url=archive.as_uri(), quiet=True)    # a local file: no network
    assert not (root / "cifar-10-batches-bin").exists() and not list(root.glob(".cifar*"))
    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    folder = data.download_cifar10(root, url=archive.as_uri(), quiet=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.CIFAR10_TRAIN_FILES + data.CIFAR10_TEST_FILES)
    assert not (tmp_path / "escape.bin").exists() and not (root / "escape.bin").exists()
    assert len(data.cifar10(root)) == 15
    # present: nothing is fetched
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    assert data.download_cifar10(root) == folder


def test_synthetic_images_have_cifar_shape_and_are_reproducible():
    a = data.synthetic_images(40, "train", seed=3)
    assert a.x.shape == (40, 3, 32, 32) and a.y.dtype == torch.long and sorted(set(a.y.tolist())) == list(range(10))
    assert torch.equal(a.x, data.synthetic_images(40, "train", seed=3).x)
    assert not torch.equal(a.x, data.synthetic_images(40, "test", seed=3).x)
    assert a.x.std().item() == pytest.approx(1.0, abs=0.1)


def test_resnet20_shapes_parameters_and_scale_invariance(one_thread):
    net = models.resnet()
    assert sum(p.numel() for p in net.parameters()) == 269_722       # He et al. 2016, ResNet-20 (0.27 M)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 19
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 19
    x = torch.randn(4, 3, 32, 32)
    assert net(x).shape == (4, 10)
    small = models.resnet(8, 4, num_classes=3)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    # BatchNorm makes the loss invariant to the scale of each convolution's weights (batch statistics)
    net.train()
    before = net(x)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    torch.testing.assert_close(net(x), before, atol=1e-4, rtol=1e-4)
    plain = models.resnet(8, 4, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) and plain[0].bias is not None
    with pytest.raises(ValueError, match=r"depth must be 6 n \+ 2"):
        models.resnet(18)
    with pytest.raises(ValueError, match="norm='layer' is not accepted"):
        models.resnet(norm="layer")


def test_augmentation_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    four = torch.full((2,), 4)
    torch.testing.assert_close(experiments._augment(x, torch.tensor([False, True]), four, four),
                               torch.stack([x[0], x[1].flip(2)]))
    shifted = experiments._augment(x, torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.long), four)
    assert (shifted[:, :, :, :4] == 0).all() and torch.equal(shifted[:, :, :, 4:], x[:, :, :, :28])


def test_resnet_mode_connectivity_end_to_end_on_synthetic_data(monkeypatch, one_thread):
    exp = experiments.get("resnet-mode-connectivity")
    assert exp.configs["full"]["data"] == "cifar10" and exp.configs["full"]["depth"] == 20
    monkeypatch.setattr(data, "download_cifar10", lambda *a, **k: pytest.fail("quick mode must not download"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("quick mode must not download"))
    config = {**exp.config("quick", 0), "bezier_stop_ratio": 0.5}   # cannot be met: the Bezier path trains
    out = exp.compute(config, torch.device("cpu"), False)
    P, S = len(config["spawn_epochs"]) + 1, config["n_points"]
    for kind in ("linear", "bezier"):
        for col in ("train_loss", "train_acc", "test_loss", "test_acc", "batch_loss", "trace", "trace_sem"):
            assert out[f"{kind}_{col}"].shape == (P, S), (kind, col)
        for col in ("loss_barrier", "error_barrier", "trace_barrier"):
            assert out[f"{kind}_{col}"].shape == (P,)
    assert all(torch.isfinite(v.double()).all() for v in out.values()), [k for k, v in out.items()
                                                                          if not torch.isfinite(v.double()).all()]
    torch.testing.assert_close(out["s"], torch.linspace(0, 1, S, dtype=torch.float64))
    assert out["pair_spawn_epoch"].tolist() == [1.0, -1.0] and out["spawn_steps"].tolist() == [4]
    assert out["endpoints"].shape == (P, 2, 5006) and out["control_points"].shape == (P, 5006)
    assert out["bezier_steps"].tolist() == [6, 6] and not out["bezier_stopped"].any()
    assert (out["bezier_distance"] > 0).all() and (out["endpoint_distance"] > 0).all()
    # both paths start and end at the same two networks
    for col in ("train_loss", "test_acc", "batch_loss", "trace"):
        torch.testing.assert_close(out[f"linear_{col}"][:, [0, -1]], out[f"bezier_{col}"][:, [0, -1]], atol=0, rtol=0)

    # the path's end values are the endpoints' own losses, recomputed here independently
    train_set = data.synthetic_images(config["n_train"], "train", seed=0)
    net = models.resnet(config["depth"], config["width"])
    stat_free = torch.func.replace_all_batch_norm_modules_(copy.deepcopy(net))
    ce = torch.nn.functional.cross_entropy
    for p in range(P):
        for j, col in ((0, 0), (1, -1)):
            torch.nn.utils.vector_to_parameters(out["endpoints"][p, j], stat_free.parameters())
            torch.nn.utils.vector_to_parameters(out["endpoints"][p, j], net.parameters())
            with torch.no_grad():
                hb = config["hessian_batch"]
                fixed = ce(stat_free(train_set.x[:hb]), train_set.y[:hb]).item()
                torch.optim.swa_utils.update_bn([(train_set.x,)], net)       # all 128 images = bn_images
                net.eval()
                loss = ce(net(train_set.x), train_set.y).item()
            assert out["linear_batch_loss"][p, col].item() == pytest.approx(fixed, rel=1e-5)
            assert out["linear_train_loss"][p, col].item() == pytest.approx(loss, rel=1e-4)
    assert (out["linear_train_loss"][:, [0, -1]] < np.log(10)).all()              # the endpoints learned something
    # children share the parent's history before the spawn; the reference trajectory ends at the independent net
    assert out["epoch_loss"].shape == (P, 2, config["epochs"])
    torch.testing.assert_close(out["epoch_loss"][0, 0, 0], out["epoch_loss"][0, 1, 0])
    assert out["trajectory_epoch"].tolist() == list(range(config["epochs"] + 1))
    assert out["trajectory_batch_loss"][-1].item() == pytest.approx(out["linear_batch_loss"][-1, 0].item(), rel=1e-6)
    # loss barrier follows the chapter's definition
    s, L = out["s"], out["linear_train_loss"]
    torch.testing.assert_close(out["linear_loss_barrier"], (L - (1 - s) * L[:, :1] - s * L[:, -1:]).max(1).values)


def test_resnet_experiment_rejects_bad_configurations():
    exp = experiments.get("resnet-mode-connectivity")
    with pytest.raises(ValueError, match=r"config\['data'\]='imagenet' is not accepted"):
        exp.compute({**exp.config("quick", 0), "data": "imagenet"}, torch.device("cpu"), False)
    with pytest.raises(ValueError, match="spawn_epochs=\\[5.0\\] must be distinct epochs in \\[0, epochs=3\\)"):
        exp.compute({**exp.config("quick", 0), "spawn_epochs": [5.0]}, torch.device("cpu"), False)
