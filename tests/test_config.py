"""Config as the one source of settings: every field classified, every flag made from its field, run names complete."""

import ast
import copy
import dataclasses
import os
import subprocess
import sys

import pytest

from dcgan_tf.config import (AUTOENCODER_FIELDS, KINDS, MODEL_FIELDS, NOT_IN_RUN_NAME, Config, ConfigError,
                             fields_of_kind, side_problem)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_PY = os.path.join(ROOT, "dcgan_tf", "config.py")
FIELDS = {field.name: field for field in dataclasses.fields(Config)}

# The model settings: a saved run refuses to resume under a change of any of them, so the set changes only on purpose.
EXPECTED_MODEL_FIELDS = {
    "dataset", "output_height", "output_width", "crop", "input_height", "input_width", "batch_size",
    "train_size", "seed", "z_dim", "z_dist", "gf_dim", "df_dim", "gfc_dim", "dfc_dim", "conditional", "y_dim", "class_names", "c_dim",
    "g_advantage",
    "d_layers", "d_batchnorm", "d_steps", "d_learning_rate", "augment", "augment_p", "ada_target", "ema",
    "spectral_norm", "loss", "gp_weight", "r1_gamma", "r1_every", "matching_aware",
    "preprocess", "ae_code_dim", "ae_epochs", "ae_learning_rate", "swap_epoch", "dedupe",
}
# Another valid value of each model field that default_run_name names, and the settings that value needs.
NAMED = {
    "dataset": ("mice", {}), "conditional": (False, {"dataset": "mnist", "output_height": 28}),
    "output_height": (32, {}), "output_width": (32, {}), "crop": (True, {}),
    "batch_size": (32, {}), "z_dim": (50, {}), "z_dist": ("normal01", {}), "gf_dim": (32, {}), "df_dim": (32, {}),
    "g_advantage": (1, {}), "d_layers": (2, {}), "d_batchnorm": (False, {}), "d_steps": (2, {}),
    "d_learning_rate": (0.0001, {}), "preprocess": ("autoencoder", {}),
    "swap_epoch": (3, {"preprocess": "autoencoder"}), "dedupe": (0.05, {}), "train_size": (500, {}), "seed": (2, {}),
    "augment": ("translation", {}), "augment_p": (0.5, {"augment": "color"}),
    "ada_target": (0.6, {"augment": "color"}), "ema": (0.99, {}), "spectral_norm": ("d", {"d_batchnorm": False}),
    "loss": ("hinge", {}), "gp_weight": (5.0, {"loss": "wgan_gp", "d_batchnorm": False}), "r1_gamma": (1.0, {"d_batchnorm": False}),
    "r1_every": (4, {"r1_gamma": 1.0, "d_batchnorm": False}), "matching_aware": (True, {"dataset": "mnist"}),
}
# Another valid value of each NOT_IN_RUN_NAME field, and the settings under which the name does show it (if any).
UNNAMED = {
    "c_dim": (1, None), "y_dim": (5, None), "class_names": (("c", "d"), None), "gfc_dim": (512, None),
    "dfc_dim": (512, None),
    "input_height": (50, {"crop": True}), "input_width": (50, {"crop": True}),
    "ae_code_dim": (64, {"preprocess": "autoencoder"}), "ae_epochs": (5, {"preprocess": "autoencoder"}),
    "ae_learning_rate": (0.01, {"preprocess": "autoencoder"}),
}

# The settings a field needs to take another value at all: labels belong to conditional runs.
UNNAMED_BASE = {"y_dim": {"dataset": "mnist", "output_height": 28},
                "class_names": {"dataset": "mice", "conditional": True, "class_names": ("a", "b")}}


def test_every_field_is_a_model_training_or_output_setting_with_help():
    kinds = {kind: fields_of_kind(kind) for kind in KINDS}
    assert set(KINDS) == {"model", "training", "output"}
    assert sorted(name for names in kinds.values() for name in names) == sorted(FIELDS)  # each exactly once
    for name, field in FIELDS.items():
        assert field.metadata["help"].strip(), name
        assert field.metadata["choices"] is None or field.default in field.metadata["choices"], name
    with pytest.raises(ValueError):
        fields_of_kind("modle")


def test_model_fields_are_the_model_kind():
    assert isinstance(MODEL_FIELDS, tuple)
    assert MODEL_FIELDS == fields_of_kind("model")
    assert set(MODEL_FIELDS) == EXPECTED_MODEL_FIELDS
    assert set(AUTOENCODER_FIELDS) <= set(MODEL_FIELDS)


def test_every_flag_has_its_field_default_and_help(absl_flags):
    for name, field in FIELDS.items():
        if not field.metadata["flag"]:
            assert name not in absl_flags, f"--{name} is defined but its field says flag=False"
            continue
        assert name in absl_flags, f"Config.{name} has no flag"
        flag = absl_flags[name]
        assert flag.default == field.default and type(flag.default) is type(field.default), name
        choices = field.metadata["choices"]
        if choices:
            assert list(flag.parser.enum_values) == list(choices), name
            assert flag.help == f"<{'|'.join(choices)}>: {field.metadata['help']}", name  # absl lists the choices
        else:
            assert flag.help == field.metadata["help"], name
        boolean = field.type in (bool, "bool", "bool | None")  # an unset boolean (None) is still one
        assert flag.boolean == boolean, name  # booleans take --noname
    assert {name for name, field in FIELDS.items() if not field.metadata["flag"]} == {"c_dim", "y_dim", "gfc_dim",
                                                                                       "dfc_dim", "class_names"}


def test_flags_parse_into_a_config(absl_flags):
    values = copy.deepcopy(absl_flags)  # parse a copy: the module's FLAGS stay unparsed for the other tests
    values(["main.py", "--nod_batchnorm", "--z_dist", "normal01", "--d_learning_rate", "0.0001", "--dataset", "mice",
            "--train_size", "5"])
    config = Config(**{name: values[name].value for name in FIELDS if name in values}).validate()
    assert (config.d_batchnorm, config.z_dist, config.d_learning_rate, config.train_size) == (False, "normal01",
                                                                                             0.0001, 5)
    assert config.default_run_name() == "mice_b64_64x64_n5_z100_ga2_normal01_dnobn_dlr0.0001"


def test_a_seed_or_a_subset_is_another_run():
    """--seed 2 is a replicate, not a continuation of the seed-1 run: another name, and a refused resume."""
    base = Config(dataset="mice").validate()
    assert Config(dataset="mice", seed=2).default_run_name() == "mice_b64_64x64_z100_ga2_s2"
    assert Config(dataset="mice", train_size=100).default_run_name() == "mice_b64_64x64_n100_z100_ga2"
    assert base.model_differences(dataclasses.replace(base, seed=2)) == {"seed": (1, 2)}
    assert base.model_differences(dataclasses.replace(base, train_size=100)) == {"train_size": (None, 100)}


def test_a_learning_rate_change_keeps_a_run_with_its_own_d_rate():
    """--d_learning_rate names the run even when it equals --learning_rate, so changing the latter on resume (which
    is allowed) never moves the run to another folder."""
    equal = Config(dataset="mice", d_learning_rate=0.0002)
    assert equal.default_run_name() == "mice_b64_64x64_z100_ga2_dlr0.0002"
    for learning_rate in (0.0001, 0.0002, 0.001):
        assert dataclasses.replace(equal, learning_rate=learning_rate).name == equal.name


def test_the_run_name_table_covers_every_model_field():
    assert set(NOT_IN_RUN_NAME) <= set(MODEL_FIELDS)
    assert all(isinstance(reason, str) and reason for reason in NOT_IN_RUN_NAME.values())
    missing = set(MODEL_FIELDS) - set(NOT_IN_RUN_NAME) - set(NAMED)
    assert not missing, (f"model fields {sorted(missing)}: name them in default_run_name (and give a value in NAMED "
                         f"here), or list them in config.NOT_IN_RUN_NAME with the reason")
    assert set(NAMED) == set(MODEL_FIELDS) - set(NOT_IN_RUN_NAME)
    assert set(UNNAMED) == set(NOT_IN_RUN_NAME)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_changing_a_model_field_changes_the_run_name(name):
    value, needs = NAMED[name]
    base = Config(**needs).validate()
    assert value != getattr(base, name)
    changed = dataclasses.replace(base, **{name: value}).validate()
    assert changed.default_run_name() != base.default_run_name()


@pytest.mark.parametrize("name", sorted(UNNAMED))
def test_fields_left_out_of_the_run_name_are_left_out(name):
    value, shown_under = UNNAMED[name]
    base = Config(**UNNAMED_BASE.get(name, {})).validate()
    assert dataclasses.replace(base, **{name: value}).validate().default_run_name() == base.default_run_name()
    if shown_under:  # named under a condition: then a change shows
        base = Config(**shown_under).validate()
        assert dataclasses.replace(base, **{name: value}).validate().default_run_name() != base.default_run_name()


def test_run_names_are_unchanged():
    assert Config().default_run_name() == "twemoji_smileys_b64_64x64_z100_ga2"
    config = Config(dataset="data/pokemon/", d_layers=2, d_batchnorm=False, d_learning_rate=0.0001,
                    preprocess="autoencoder", swap_epoch=20)
    assert config.default_run_name() == "pokemon_b64_64x64_z100_ga2_dl2_dnobn_dlr0.0001_ae128_swap20"
    config = Config(dataset="mnist", output_height=28, crop=True, input_height=50, batch_size=4, z_dim=8,
                    g_advantage=3, z_dist="uniform_unsigned", gf_dim=8, df_dim=16, d_steps=2, dedupe=0.05,
                    ae_code_dim=64, ae_epochs=5, ae_learning_rate=0.01)
    assert config.default_run_name() == ("mnist_b4_28x28_crop50x50_z8_ga3_uniform_unsigned_gf8_df16_ds2_ae64_e5"
                                         "_aelr0.01_dedupe0.05")


def test_config_imports_only_the_standard_library():
    tree = ast.parse(open(CONFIG_PY).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import in config.py"
            imported.add(node.module.split(".")[0])
    assert not imported & {"dcgan_tf", "tensorflow", "keras", "absl", "numpy"}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_loading_config_does_not_load_tensorflow():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('config', {CONFIG_PY!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['config'] = module\n"
            "spec.loader.exec_module(module)\n"
            "module.Config(output_height=12).resolved()\n"
            "try:\n"
            "    module.Config(output_height=12).validate()\n"
            "except module.ConfigError as error:\n"
            "    print(error.field)\n"
            "heavy = ('tensorflow', 'keras', 'dcgan_tf')\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in heavy))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["output_height", "[]"]


def test_the_autoencoder_needs_even_sides():
    Config(output_height=28, preprocess="autoencoder").validate()
    with pytest.raises(ConfigError, match="17 is odd") as error:
        Config(output_height=32, output_width=17, dedupe=0.1).validate()
    assert error.value.field == "output_width"
    Config(output_height=17).validate()  # the GAN alone takes it


def test_side_problem_lists_sizes_that_work():
    assert side_problem("height", 64) is None and side_problem("height", 28, conditional=True) is None
    assert side_problem("height", 28) is None and side_problem("width", 20) is None  # halved rounding up
    assert side_problem("width", 12) == ("output width 12 does not work: the nets have 4 stride-2 stages, so each side "
                                         "must be at least 16 (e.g. 28, 32, 48, 64, 96, 128)")
    assert side_problem("width", 30, conditional=True) == (
        "output width 30 does not work: conditional (MNIST) nets have 2 stride-2 stages, so each side must be a "
        "multiple of 4 (nearest: 28 or 32; e.g. 4, 8, 12, 16, 24, 32)")
    with pytest.raises(ConfigError, match="output_height: output height 8 does not work"):
        Config(output_height=8).validate()


def test_the_effective_ema_decay_is_the_warmed_up_one():
    from dcgan_tf.config import effective_ema_decay

    assert effective_ema_decay(0.999, 360) == pytest.approx(361 / 370)  # 0.976: what a 360-step run averaged with
    assert effective_ema_decay(0.9, 1000) == 0.9
