"""The ``akida`` command line: ``akida summary | run | fit | convert | map | info``.

Run it as ``akida ...`` (the console script of the ``openakida`` distribution) or
``python -m akida ...``. ``akida --help`` and ``akida COMMAND --help`` list the options.

Why Click and not Typer: Click is one small pure-Python package with no dependencies of its own,
while Typer is built on Click and adds its own dependencies (typing helpers, rich output) for
type-hint driven declarations this handful of commands does not need.

Exit codes: 0 success; 2 a usage error (unknown option, missing argument, bad choice: Click's
default); 1 a model or input error (a missing or corrupt file, inputs of the wrong shape or dtype,
an unconvertible CNN), with the library's message on stderr and no traceback.

Adding a command takes a few lines:
a function decorated with ``@main.command()`` and ``@user_errors``, which loads its model with
:func:`load_model` and prints its result::

    @main.command("map")
    @click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
    @user_errors
    def map_command(model_path):
        model = load_model(model_path)
        ...
"""

from __future__ import annotations

import functools
import json
import os
import struct
import sys
from typing import Any, Callable, Iterator, TypeVar

import click
import numpy as np

# The model file format version this engine writes. The authoritative constant is
# FORMAT_VERSION in crates/akida-format/src/lib.rs (and the history in schema/akida.fbs);
# ``format_version()`` reads the number from a freshly serialized model and falls back to this
# constant only if the buffer cannot be parsed.
FORMAT_VERSION = 2

# Names looked up in .npz files, in order.
INPUT_KEYS = ("x", "inputs")
LABEL_KEYS = ("y", "labels")
EVENT_KEYS = ("sample", "x", "y", "channel", "value")

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(function: F) -> F:
    """Turns the errors a user can cause (bad files, bad inputs, bad parameters) into exit code 1
    with the message on stderr, without a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import akida

        try:
            return function(*args, **kwargs)
        except click.ClickException:
            raise
        except (akida.AkidaError, OSError, ValueError, TypeError, KeyError, ImportError) as e:
            message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
            if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in message:
                message = f"{message}: {e.filename}"
            raise click.ClickException(message or type(e).__name__) from None

    return wrapper  # type: ignore[return-value]


def load_model(path: str) -> Any:
    """An :class:`akida.Model` from a ``.fb`` or ``.fbz`` file, with the loading cap of the
    group option ``--max-size`` (the engine's default cap when it is not given)."""
    import akida

    context = click.get_current_context(silent=True)
    max_size = context.find_root().params.get("max_size") if context is not None else None
    if max_size is None:
        return akida.Model(path)
    return akida.Model(path, max_size=max_size)


def _as_input_array(array: np.ndarray) -> np.ndarray:
    """Integer arrays whose values fit in uint8 become uint8 (``np.save`` of a Python list gives
    int64); anything else is passed on as it is, for the engine to check and name."""
    if array.dtype != np.uint8 and np.issubdtype(array.dtype, np.integer) and array.size:
        if array.min() >= 0 and array.max() <= 255:
            return array.astype(np.uint8)
    return array


def _pick(arrays: Any, keys: tuple[str, ...], what: str, path: str, required: bool = True) -> np.ndarray | None:
    for key in keys:
        if key in arrays.files:
            return np.asarray(arrays[key])
    if len(arrays.files) == 1 and what == "inputs":
        return np.asarray(arrays[arrays.files[0]])
    if not required:
        return None
    names = ", ".join(arrays.files) or "none"
    wanted = " or ".join(repr(k) for k in keys)
    raise click.ClickException(f"{path}: no array named {wanted} for the {what} (arrays: {names})")


def load_inputs(path: str) -> np.ndarray:
    """The input array of a ``.npy`` file, or of a ``.npz`` file (the array named ``x`` or
    ``inputs``, or its only array)."""
    if path.endswith(".npz"):
        with _open_npz(path) as arrays:
            return _as_input_array(_pick(arrays, INPUT_KEYS, "inputs", path))  # type: ignore[arg-type]
    try:
        return _as_input_array(np.load(path, allow_pickle=False))
    except (ValueError, EOFError) as e:
        raise click.ClickException(f"cannot read {path!r} as a .npy array: {e}") from None


def _open_npz(path: str) -> Any:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as e:
        raise click.ClickException(f"cannot read {path!r} as a .npz file: {e}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise click.ClickException(f"{path!r} is a single array (.npy), not a .npz file of named arrays")
    return loaded


def load_labels(path: str) -> np.ndarray | None:
    """The labels of a ``.npz`` file (``y`` or ``labels``), or None."""
    if not path.endswith(".npz"):
        return None
    with _open_npz(path) as arrays:
        return _pick(arrays, LABEL_KEYS, "labels", path, required=False)


class EventSource:
    """The events of a ``.npz`` file holding ``sample``, ``x``, ``y``, ``channel`` and ``value``
    arrays (and optionally ``num_samples``), cut into batches of whole samples."""

    def __init__(self, path: str, shape: tuple[int, int, int]):
        with _open_npz(path) as arrays:
            missing = [k for k in EVENT_KEYS if k not in arrays.files]
            if missing:
                raise click.ClickException(
                    f"{path}: an events file needs the arrays {', '.join(EVENT_KEYS)}; missing: {', '.join(missing)}"
                )
            self.columns = {k: np.asarray(arrays[k]) for k in EVENT_KEYS}
            count = np.asarray(arrays["num_samples"]) if "num_samples" in arrays.files else None
        sample = self.columns["sample"]
        if count is not None:
            if count.ndim != 0 or count.dtype.kind not in "iu":
                raise click.ClickException(
                    f"{path}: num_samples must be one integer, got a {count.dtype} array of shape {list(count.shape)}"
                )
            self.num_samples = int(count)
        else:
            self.num_samples = int(sample.max()) + 1 if sample.size and sample.dtype.kind in "iu" else 0
        self.shape = shape
        # Every check of akida.Events (sample indices within num_samples, coordinates within the
        # shape, values, the batch limit) once, on the whole file: a batch then cannot lose events.
        import akida

        try:
            akida.Events(shape=shape, **self.columns, num_samples=self.num_samples)
        except (akida.AkidaError, TypeError, ValueError) as e:
            raise click.ClickException(f"{path}: {e}") from None
        self._order = np.argsort(sample, kind="stable")

    def batch(self, start: int, stop: int) -> Any:
        import akida

        sample = self.columns["sample"][self._order]
        lo, hi = np.searchsorted(sample, [start, stop])
        chosen = self._order[lo:hi]
        c = self.columns
        return akida.Events(
            shape=self.shape,
            sample=c["sample"][chosen] - start,
            x=c["x"][chosen],
            y=c["y"][chosen],
            channel=c["channel"][chosen],
            value=c["value"][chosen],
            num_samples=stop - start,
        )


def _progress(total: int, enabled: bool | None, unit: str = "sample") -> Any:
    """A tqdm bar on stderr (enabled: True forces it, None: when stderr is a terminal), or a
    stand-in with the same ``update`` / ``close``."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            click.echo("note: the progress bar needs tqdm (pip install openakida[progress])", err=True)
        else:
            return tqdm(total=total, unit=unit, file=sys.stderr)

    class _NoBar:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _NoBar()


def _batches(total: int, batch_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, batch_size):
        yield start, min(start + batch_size, total)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return str(value).rsplit(".", 1)[-1]  # enums: ConvolutionMode.Same -> "Same"


def layer_records(model: Any) -> list[dict[str, Any]]:
    """One JSON-ready dict per layer: name, type, input / output shapes, inbound layer names,
    parameters and (for a compiled layer) the learning parameters."""
    records = []
    for layer in model.layers:
        learning = layer.learning
        records.append(
            {
                "name": layer.name,
                "type": layer.layer_type,
                "input_shape": list(layer.input_shape),
                "output_shape": list(layer.output_shape),
                "inbound_layers": [inbound.name for inbound in layer.inbound_layers],
                "parameters": _jsonable(layer.parameters.to_dict()),
                "learning": None if learning is None else _jsonable(learning.to_dict()),
            }
        )
    return records


def format_version() -> int:
    """The ``format_version`` field of a freshly serialized one-layer model (the root table's
    first field in ``schema/akida.fbs``), or :data:`FORMAT_VERSION` if that cannot be read."""
    import akida

    try:
        buffer = akida.Model([akida.InputData(1, 1, 1)]).to_buffer()
        (table,) = struct.unpack_from("<I", buffer, 0)
        (vtable_back,) = struct.unpack_from("<i", buffer, table)
        vtable = table - vtable_back
        vtable_size, _ = struct.unpack_from("<HH", buffer, vtable)
        if vtable_size < 6:
            return 0  # field absent: the FlatBuffers default
        (field,) = struct.unpack_from("<H", buffer, vtable + 4)
        return struct.unpack_from("<I", buffer, table + field)[0] if field else 0
    except (struct.error, akida.AkidaError):  # pragma: no cover - only if the layout changed
        return FORMAT_VERSION


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="openakida", prog_name="akida", message="%(prog)s (openakida) %(version)s")
@click.option(
    "--max-size",
    type=click.IntRange(min=1, max=2**31 - 1),
    default=None,
    metavar="BYTES",
    help="Cap on the bytes loading a model may produce (inflated .fbz, pipes); the default is the "
    "engine's (192 MiB). Raise it for genuinely huge models.",
)
def main(max_size: int | None) -> None:
    """Tools around the openakida engine: inspect, run, train and convert Akida models."""


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the layers instead of the table.")
@user_errors
def summary(model_path: str, as_json: bool) -> None:
    """Print the layer table of MODEL (.fb or .fbz)."""
    model = load_model(model_path)
    if as_json:
        click.echo(json.dumps(layer_records(model), indent=2))
    else:
        model.summary()


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("inputs_path", metavar="INPUTS", type=click.Path(dir_okay=False))
@click.option("--events", is_flag=True, help="INPUTS is a .npz of sample, x, y, channel, value arrays (akida.Events).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Save the outputs to this .npy file.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True, help="Samples per call.")
@click.option("--mode", type=click.Choice(["forward", "predict", "evaluate"]), default="forward", show_default=True)
@click.option("--num-classes", type=click.IntRange(min=1), help="Classes for --mode predict (default: the compiled ones).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@user_errors
def run(
    model_path: str,
    inputs_path: str,
    events: bool,
    output: str | None,
    batch_size: int,
    mode: str,
    num_classes: int | None,
    progress: bool | None,
) -> None:
    """Run MODEL on INPUTS (.npy, or .npz with an array x or inputs) in batches.

    Without -o, prints one line per sample: the class (predict) or the flattened outputs.
    """
    if num_classes is not None and mode != "predict":
        raise click.UsageError("--num-classes applies to --mode predict only")
    model = load_model(model_path)
    if events:
        source = EventSource(inputs_path, model.input_shape)
        total = source.num_samples
        get = source.batch
    else:
        array = load_inputs(inputs_path)
        total = len(array) if array.ndim else 0
        get = lambda start, stop: array[start:stop]  # noqa: E731
    if mode == "forward":
        call = model.forward
    elif mode == "evaluate":
        call = model.evaluate
    else:
        call = functools.partial(model.predict, num_classes=num_classes)
    bar = _progress(total, progress)
    parts = []
    try:
        for start, stop in _batches(total, batch_size):
            parts.append(call(get(start, stop)))
            bar.update(stop - start)
    finally:
        bar.close()
    if not parts:
        parts.append(call(get(0, 0)))
    result = np.concatenate(parts)
    if output:
        with open(output, "wb") as file:  # np.save(path) would append ".npy" to another name
            np.save(file, result)
        click.echo(f"{mode}: {len(result)} samples -> {output} {result.dtype} {list(result.shape)}", err=True)
        return
    lines = (" ".join(map(str, row.reshape(-1).tolist())) for row in result)
    click.echo("\n".join(lines))


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_path", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The trained model (.fb or .fbz).")
@click.option("--num-weights", required=True, type=int, help="Connections set to 1 per neuron.")
@click.option("--num-classes", type=int, help="Default: max label + 1 with labels, else 1.")
@click.option("--initial-plasticity", type=float, default=1.0, show_default=True)
@click.option("--min-plasticity", type=float, default=0.1, show_default=True)
@click.option("--plasticity-decay", type=float, default=0.25, show_default=True)
@click.option("--learning-competition", type=float, default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True, help="Samples per fit call.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@user_errors
def fit(
    model_path: str,
    data_path: str,
    output: str,
    num_weights: int,
    num_classes: int | None,
    initial_plasticity: float,
    min_plasticity: float,
    plasticity_decay: float,
    learning_competition: float,
    seed: int,
    batch_size: int,
    progress: bool | None,
) -> None:
    """Compile the last layer of MODEL for Akida learning and fit it on DATA (.npz with inputs
    x or inputs and, optionally, labels y or labels); save the result to -o.

    The result does not depend on --batch-size (docs/learning.md).
    """
    model = load_model(model_path)
    inputs = load_inputs(data_path)
    labels = load_labels(data_path)
    if labels is not None:
        labels = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.integer) else labels
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels is not None and labels.size else 1
    model.compile(
        num_weights=num_weights,
        num_classes=num_classes,
        initial_plasticity=initial_plasticity,
        min_plasticity=min_plasticity,
        plasticity_decay=plasticity_decay,
        learning_competition=learning_competition,
        seed=seed,
    )
    total = len(inputs) if inputs.ndim else 0
    bar = _progress(total, progress)
    try:
        for start, stop in _batches(total, batch_size):
            model.fit(inputs[start:stop], None if labels is None else labels[start:stop])
            bar.update(stop - start)
    finally:
        bar.close()
    model.save(output)
    click.echo(f"fit: {total} samples, {num_classes} classes -> {output}", err=True)


def _parse_bits(value: str) -> tuple[int, int, int]:
    try:
        bits = tuple(int(b) for b in value.split("/"))
    except ValueError:
        bits = ()
    if len(bits) != 3:
        raise click.BadParameter(f"{value!r}: expected INPUT_WEIGHTS/WEIGHTS/ACTIVATIONS, e.g. 8/4/4")
    return bits  # type: ignore[return-value]


def _parse_scaling(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        scale, offset = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected SCALE,OFFSET, e.g. 1,0") from None
    return scale, offset


@main.command()
@click.argument("cnn_path", metavar="CNN", type=click.Path(dir_okay=False))
@click.option("--calibration", type=click.Path(dir_okay=False), help="A .npy or .npz (x or inputs) of sample inputs.")
@click.option("--bits", default="8/4/4", show_default=True, help="Input-layer weights / weights / activations.")
@click.option("--input-scaling", help="SCALE,OFFSET: the Akida model receives SCALE * x + OFFSET.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The Akida model (.fb or .fbz).")
@user_errors
def convert(cnn_path: str, calibration: str | None, bits: str, input_scaling: str | None, output: str) -> None:
    """Quantize a trained CNN (.onnx or .keras) and convert it to an Akida model (docs/cnn2snn.md)."""
    input_bits, weight_bits, activ_bits = _parse_bits(bits)
    scaling = _parse_scaling(input_scaling)
    if cnn_path.endswith(".keras"):
        os.environ.setdefault("KERAS_BACKEND", "jax")
    from . import cnn2snn

    data = None if calibration is None else load_inputs(calibration)
    if data is not None and data.dtype == np.uint8:
        data = data.astype(np.float32)
    try:
        qmodel = cnn2snn.quantize(
            cnn_path,
            weight_quantization=weight_bits,
            activ_quantization=activ_bits,
            input_weight_quantization=input_bits,
            calibration_data=data,
        )
    except Exception as e:
        # A corrupt .onnx file raises protobuf's DecodeError, which is no ValueError.
        if type(e).__name__ == "DecodeError":
            raise click.ClickException(f"cannot read {cnn_path!r} as an ONNX model: {e}") from None
        raise
    model = cnn2snn.convert(qmodel, input_scaling=scaling)
    model.save(output)
    click.echo(f"convert: {len(model.layers)} layers ({bits}) -> {output}", err=True)


@main.command("map")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--device", "device_name", type=click.Choice(["AKD1000"]), default="AKD1000", show_default=True,
              help="The virtual device to map onto.")
@click.option("--mode", type=click.Choice(["AllNps", "Minimal"]), default="AllNps", show_default=True,
              help="AllNps: as many NPs as the limits allow; Minimal: the fewest NPs.")
@click.option("--hw-only", is_flag=True, help="Fail (exit 1) if any layer would run in software.")
@click.option("--report", is_flag=True, help="Print the full report of both modes.")
@click.option("--json", "as_json", is_flag=True, help="Print the placement of every layer as JSON.")
@user_errors
def map_command(model_path: str, device_name: str, mode: str, hw_only: bool, report: bool, as_json: bool) -> None:
    """Map MODEL onto a virtual Akida device and print where each layer runs."""
    import akida

    model = load_model(model_path)
    device = akida.AKD1000()
    model.map(device, hw_only=hw_only, mode=getattr(akida.MapMode, mode))
    if as_json:
        records = []
        for index, sequence in enumerate(model.sequences):
            for number, single in enumerate(sequence.passes):
                for layer in single.layers:
                    mapping = layer.mapping
                    records.append({
                        "layer": layer.name,
                        "sequence": index,
                        "pass": number,
                        "backend": "Hardware" if sequence.backend == akida.BackendType.Hardware else "Software",
                        "placement": mapping.placement,
                        "reason": mapping.reason,
                        "nps": [
                            {"ident": list(n.ident), "type": str(n.type).split(".")[-1], "filters": [n.filters.start, n.filters.stop],
                             "columns": [n.columns.start, n.columns.stop], "memory_bytes": n.memory_bytes}
                            for n in mapping.nps
                        ],
                    })
        click.echo(json.dumps({"device": device.version, "mode": mode, "layers": records}, indent=2))
        return
    text = model.map_report()
    if not report:
        # The report lists both modes; keep the one asked for.
        blocks = text.split("\n\n")
        text = next(b for b in blocks if b.startswith(mode))
    click.echo(text.rstrip())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def info(as_json: bool) -> None:
    """Print the engine version, threads, SIMD level, thread pinning and model format version."""
    import akida

    engine = akida.engine_info()
    record = {
        "version": akida.__version__,
        "worker_threads": engine["worker_threads"],
        "simd": engine["simd"],
        "parallel": engine["parallel"],
        "pinned_workers": engine["pinned_workers"],
        "format_version": format_version(),
    }
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(f"openakida {record['version']}")
    click.echo(f"engine threads: {record['worker_threads']}")
    click.echo(f"SIMD level: {record['simd']}")
    click.echo(f"parallel samples: {'yes' if record['parallel'] else 'no'}")
    click.echo(f"workers pinned to a CPU each: {'yes' if record['pinned_workers'] else 'no'}")
    click.echo(f"model format version: {record['format_version']} (.fb / .fbz)")


if __name__ == "__main__":  # pragma: no cover
    main()
