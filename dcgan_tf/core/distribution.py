"""--strategy: train on one device, on every local device (MirroredStrategy), or on several machines
(MultiWorkerMirroredStrategy, configured through the TF_CONFIG environment variable); and the replica plumbing
the training step needs under a strategy (this replica's rows, loss shares, agreed overflows, loops), kept here so
the step itself reads like the algorithm."""

from __future__ import annotations

import json
import logging
import os

import keras
import tensorflow as tf

from dcgan_tf.config import STRATEGIES, ConfigError

log = logging.getLogger(__name__)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy `name` asks for.

    mirrored: one replica per local GPU, or per logical CPU device where there is no GPU. multiworker: every worker
    listed in TF_CONFIG, each with its local GPUs (or its CPU); create it before any other TensorFlow work.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
        devices = devices or [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        log.info("--strategy mirrored: %d replicas on %s", strategy.num_replicas_in_sync, ", ".join(devices))
        return strategy
    if name == "multiworker":
        cluster = read_tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        log.info("--strategy multiworker: %s %d of %d workers, %d replicas in all", cluster["task"]["type"],
                 cluster["task"]["index"], len(cluster["cluster"].get("worker", [])) + len(
                     cluster["cluster"].get("chief", [])), strategy.num_replicas_in_sync)
        return strategy
    raise ConfigError("strategy", f"must be one of {', '.join(STRATEGIES)} (got {name!r})")


def read_tf_config() -> dict:
    """TF_CONFIG, checked: a JSON object with a cluster of workers and this process's task in it."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError("strategy", "multiworker needs the TF_CONFIG environment variable on every machine, e.g. "
                                      "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                                      "\"task\": {\"type\": \"worker\", \"index\": 0}}' (see docs/performance.md)")
    try:
        config = json.loads(text)
        workers = config["cluster"].get("worker", []) + config["cluster"].get("chief", [])
        task_type, index = config["task"]["type"], int(config["task"]["index"])
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ConfigError("strategy", f"TF_CONFIG is not a cluster and task description ({error!r}): {text}") from None
    if not workers or task_type not in ("worker", "chief") or not 0 <= index < len(config["cluster"].get(task_type, [])):
        raise ConfigError("strategy", f"TF_CONFIG must list workers and name this process's task among them: {text}")
    return config


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs: always, except on the non-chief workers of a multiworker run."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_name(strategy: tf.distribute.Strategy) -> str:
    """'worker 1' (or 'chief 0') in a multiworker run, else ''."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return ""
    return f"{resolver.task_type} {resolver.task_id}"


def check_batch_split(batch_size: int, strategy: tf.distribute.Strategy) -> None:
    """The global batch must split evenly over the replicas, so each replica's z and data match one device's."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError("batch_size", f"must split evenly over the strategy's {replicas} replicas (got {batch_size}; "
                                        f"try {max(replicas, batch_size // replicas * replicas)})")


def barrier(strategy: tf.distribute.Strategy) -> None:
    """In a multiworker run, wait until every worker gets here (a collective sum); elsewhere nothing."""
    if is_multiworker(strategy) and strategy.num_replicas_in_sync > 1:
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Workers take their part of each global batch (our pipeline has no files for FILE sharding)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# ------------------------------------------------------------------------------------------ inside the training step
def replicas_in_sync() -> int:
    """How many replicas share this step: 1 outside a distribution strategy or in its cross-replica context."""
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def this_replicas_rows(batch, rows: int):
    """Rows [r * rows, (r + 1) * rows) of a global batch drawn alike on every replica r; the batch itself on one."""
    if replicas_in_sync() == 1:
        return batch
    first = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32) * rows
    rest = tf.rank(batch) - 1  # any rank: the other axes whole
    return tf.slice(batch, tf.concat([[first], tf.zeros([rest], tf.int32)], 0),
                    tf.concat([[rows], -tf.ones([rest], tf.int32)], 0))


def stateless_uniform_rows(key, rows, tail=(), minval=0.0, maxval=1.0, dtype=tf.float32):
    """[rows, *tail] stateless uniform draws keyed by `key`: this replica's rows of the global batch's draw, so an
    update on several replicas draws what one device would on the whole batch."""
    shape = tf.concat([[rows * replicas_in_sync()], tf.constant(tail, tf.int32)], axis=0)
    return this_replicas_rows(tf.random.stateless_uniform(shape, key, minval, maxval, dtype=dtype), rows)


def mean_over_replicas(value):
    """The mean of a per-replica value over the replicas of this step; the value itself on one."""
    if replicas_in_sync() == 1:
        return value
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, value)


def scaled_loss(optimizer, loss):
    """The loss to differentiate: this replica's share (the optimizer sums replicas' gradients), times the fp16 loss
    scale when there is one (scale_loss is the identity otherwise)."""
    replicas = replicas_in_sync()
    return optimizer.scale_loss(loss / replicas if replicas > 1 else loss)


def apply_gradients(optimizer, grads, variables) -> None:
    """optimizer.apply(grads, variables). With fp16 loss scaling over several replicas, an overflow on any replica
    becomes every replica's: Keras' LossScaleOptimizer judges the gradients of one replica before they are summed, so
    without this one replica's inf could be applied, or workers could take different branches and wait forever."""
    if replicas_in_sync() > 1 and isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(grad)) for grad in grads])
        overflows = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32))
        poison = tf.where(overflows > 0, float("nan"), 0.0)
        grads = [grad + tf.cast(poison, grad.dtype) for grad in grads]
    optimizer.apply(grads, variables)


def repeat(count: int, body, initial):
    """body(i, state) -> state for i in range(count), in a graph while_loop (Keras traces train_step without
    AutoGraph), so g_advantage=50 builds no bigger graph than 1. Measured no slower than the updates written out.
    With several replicas the updates are written out: a strategy cannot synchronise inside a while_loop."""
    if replicas_in_sync() > 1:
        state = initial
        for i in range(count):
            state = body(i, state)
        return state
    return tf.while_loop(lambda i, state: i < count, lambda i, state: (i + 1, body(i, state)),
                         (tf.constant(0), initial))[1]


def when(condition, compute, otherwise: float = 0.0):
    """compute() where `condition` holds, else `otherwise`, in a graph cond, so a skipped step skips the work. With
    several replicas compute() always runs and is masked: a strategy cannot synchronise (batch norm) inside a cond."""
    if replicas_in_sync() > 1:
        return tf.where(condition, compute(), otherwise)
    return tf.cond(condition, compute, lambda: tf.constant(otherwise))


def step_logs(values: dict, strategy) -> dict:
    """train_step's per-step values as fit() wants them: across workers Keras averages logs along a batch axis."""
    if is_multiworker(strategy) and strategy.extended._in_multi_worker_mode():  # the test Keras itself applies
        return {name: tf.reshape(value, [1]) for name, value in values.items()}
    return values
