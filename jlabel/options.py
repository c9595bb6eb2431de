"""The options of the job-starting calls, defined once.

``ds.auto_label``, ``ds.pre_label`` and ``ds.auto_group`` take keyword-only options; each set
here gives the method its signature (``inspect.signature`` and ``help()`` show the real
parameters), its numpy-style *Parameters* section, the validation of a call (unknown names,
choices, ranges -> :class:`~jlabel.errors.InvalidArgument`), and the widget's auto-label form
(options marked ``form`` travel to the browser with their choices and defaults).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jlabel.errors import InvalidArgument

Check = Callable[[Any], str | None]
"""Returns what is wrong with a value (a phrase after "must"), or None when it is fine."""


@dataclass(frozen=True)
class Option:
    """One keyword-only option of a job-starting call."""

    name: str
    default: Any
    annotation: str
    doc: str
    choices: tuple[Any, ...] | None = None
    check: Check | None = None
    form: str | None = None
    """Label of the option's field in the widget's form (None: not in the form)."""
    form_choices: tuple[tuple[Any, str], ...] = ()
    """``(value, text)`` offered by the widget's form (the call may accept more)."""

    def validate(self, value: Any, call: str) -> Any:
        """`value` when it is allowed for this option, else an InvalidArgument naming `call`."""
        problem = None
        if self.choices is not None and value not in self.choices:
            problem = "be " + " or ".join(repr(c) for c in self.choices)
        elif self.check is not None:
            problem = self.check(value)
        if problem is not None:
            raise InvalidArgument(f"{self.name} must {problem}, not {value!r} (in {call})")
        return value


@dataclass(frozen=True)
class OptionSet:
    """The options of one call, in signature order."""

    call: str
    options: tuple[Option, ...]
    positional: tuple[tuple[str, str, str], ...] = ()
    """``(name, annotation, doc)`` of required positional parameters (``model`` of pre_label)."""
    by_name: dict[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {o.name: o for o in self.options})

    @property
    def names(self) -> list[str]:
        """The option names, in order."""
        return [o.name for o in self.options]

    def defaults(self) -> dict[str, Any]:
        """Each option's default value."""
        return {o.name: o.default for o in self.options}

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every option's value (defaults filled in), each validated; unknown names refused."""
        unknown = [name for name in given if name not in self.by_name]
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, self.names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidArgument(
                f"{self.call}() got an unknown option {name!r}: {hint}"
                f"the options are {', '.join(self.names)}"
            )
        values = self.defaults() | given
        return {name: self.by_name[name].validate(values[name], self.call) for name in values}

    def signature(self, returns: str) -> inspect.Signature:
        """The method's signature: ``self``, the positional parameters, then the options."""
        kind = inspect.Parameter
        params = [kind("self", kind.POSITIONAL_OR_KEYWORD)]
        params += [kind(n, kind.POSITIONAL_OR_KEYWORD, annotation=a) for n, a, _ in self.positional]
        params += [
            kind(o.name, kind.KEYWORD_ONLY, default=o.default, annotation=o.annotation)
            for o in self.options
        ]
        return inspect.Signature(params, return_annotation=returns)

    def docstring(self, summary: str, returns: str) -> str:
        """A numpy-style docstring: `summary`, then every parameter and option, then `returns`."""
        lines = [summary.strip(), "", "Parameters", "----------"]
        entries = [(n, a, d) for n, a, d in self.positional]
        entries += [(o.name, f"{o.annotation}, default {o.default!r}", o.doc) for o in self.options]
        for name, annotation, doc in entries:
            lines.append(f"{name} : {annotation}")
            lines.extend("    " + part for part in _wrap(doc))
        lines += ["", "Returns", "-------", returns]
        return "\n".join(lines)

    def form(self) -> list[dict[str, Any]]:
        """The options the widget's form shows: name, label, default, choices with texts."""
        out = []
        for o in self.options:
            if o.form is None:
                continue
            entry: dict[str, Any] = {"name": o.name, "label": o.form, "default": o.default}
            if o.form_choices:
                entry["choices"] = [{"value": v, "text": text} for v, text in o.form_choices]
            out.append(entry)
        return out


Method = Callable[..., Any]


def takes(options: OptionSet, *, returns: str) -> Callable[[Method], Method]:
    """Give a ``def method(self, [positional,] **options)`` the set's signature and docs.

    The method's own docstring is the summary; the Parameters section comes from the set.
    """

    def decorate(method: Method) -> Method:
        method.__signature__ = options.signature(returns)  # type: ignore[attr-defined]
        method.__doc__ = options.docstring(method.__doc__ or "", returns)
        return method

    return decorate


def _wrap(text: str, width: int = 88) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


# ---------------------------------------------------------------------------------- checks
def _precision(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.5 <= value < 1
    return None if ok else "be a number in [0.5, 1), e.g. 0.95"


def _int_at_least(low: int) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return None if ok else f"be a whole number of at least {low}"

    return check


def _share(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return None if ok else "be a number in [0, 1]"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "be True or False"


def _device(value: Any) -> str | None:
    ok = value is None or (isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps"))
    return None if ok else "be None (the best available), 'cpu', 'cuda', 'cuda:N' or 'mps'"


def _optional_str(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "be None or a string"


def _names(value: Any) -> str | None:
    ok = value is None or (
        not isinstance(value, str)
        and isinstance(value, Iterable)
        and all(isinstance(v, str) for v in value)
    )
    return None if ok else "be None or a list of class names"


def _mapping(value: Any) -> str | None:
    ok = value is None or (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    )
    return None if ok else "be None or a dict of model class -> dataset label"


# --------------------------------------------------------------------------- shared options
TARGET_PRECISION = Option(
    "target_precision",
    0.95,
    "float",
    "Precision the confidence cut is calibrated to on held-out labels; proposals under it are "
    "marked hard examples.",
    check=_precision,
    form="Target precision",
)
DEVICE = Option(
    "device",
    None,
    "str | None",
    "'cuda', 'cuda:N', 'mps' or 'cpu'; None picks the best available.",
    check=_device,
)
SEED = Option("seed", 0, "int", "Random seed (folds, training, sampling).", check=_int_at_least(0))
INCLUDE_PROPOSED = Option(
    "include_proposed",
    True,
    "bool",
    "Also propose again for images whose proposals are not confirmed yet.",
    check=_bool,
)
QUEUE = Option(
    "queue",
    True,
    "bool",
    "When a job of this dataset is running: queue this one (True) or raise PreconditionError.",
    check=_bool,
)
PROGRESS = Option("progress", True, "bool", "Show a progress bar in the notebook.", check=_bool)
BACKBONE = Option(
    "backbone",
    "resnet18",
    "str | torch.nn.Module",
    "A torchvision model name (pretrained when its weights can be had; a small CNN is trained "
    "instead, with a note, when they cannot), an nn.Module feature extractor, or 'cnn' for the "
    "small CNN.",
    form="Backbone",
    form_choices=(
        ("resnet18", "resnet18 (pretrained if available)"),
        ("resnet50", "resnet50 (pretrained if available)"),
        ("mobilenet_v3_small", "mobilenet_v3_small (pretrained if available)"),
        ("efficientnet_b0", "efficientnet_b0 (pretrained if available)"),
        ("cnn", "small CNN trained on your images (no download)"),
    ),
)
WEIGHTS = Option(
    "weights",
    "DEFAULT",
    "str | None",
    "Weights of a torchvision backbone: 'DEFAULT' (pretrained), a weights name, or None for "
    "random weights.",
    check=_optional_str,
)

AUTO_LABEL = OptionSet(
    "auto_label",
    (
        Option(
            "mode",
            "fast",
            "str",
            "'fast' learns from the labels only (seconds); 'precise' also learns from the "
            "unlabeled images (minutes) and keeps the labels-only learner where held-out labels "
            "say semi-supervision does not help.",
            choices=("fast", "precise"),
            form="Mode",
            form_choices=(
                ("fast", "fast — learns from your labels only (seconds)"),
                ("precise", "precise — also learns from unlabeled images (minutes)"),
            ),
        ),
        TARGET_PRECISION,
        Option(
            "task",
            "classification",
            "str",
            "'classification' proposes image labels; 'detection' proposes boxes (learning from "
            "the images' boxes) and accepts an image only when its whole set of boxes is sure.",
            choices=("classification", "detection"),
            form="Task",
            form_choices=(
                ("classification", "classification — a label per image"),
                ("detection", "detection — boxes around objects"),
            ),
        ),
        BACKBONE,
        WEIGHTS,
        DEVICE,
        SEED,
        Option(
            "image_size",
            24,
            "int",
            "Side in pixels of the images the small CNN learns from.",
            check=_int_at_least(8),
        ),
        Option(
            "input_size",
            224,
            "int",
            "Side in pixels of the images a backbone embeds (224 for ImageNet models).",
            check=_int_at_least(16),
        ),
        INCLUDE_PROPOSED,
        QUEUE,
        PROGRESS,
        Option(
            "train",
            None,
            "jlabel.autolabel.cnn.TrainConfig | jlabel.autolabel.detect.DetectConfig | None",
            "Training settings of the small CNN (steps, batch, ...), or for task='detection' "
            "of the detector (DetectConfig); None: the defaults.",
        ),
        Option(
            "min_unlabeled_for_semi",
            500,
            "int",
            "With fewer unlabeled images the small CNN skips semi-supervision.",
            check=_int_at_least(0),
        ),
        Option(
            "min_agreement",
            0.8,
            "float",
            "A proposal is also hard when fewer than this share of the fold models agree with it.",
            check=_share,
        ),
    ),
)


def _fraction(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
    return None if ok else "be a number in (0, 1]"


TASK = Option(
    "task",
    "classification",
    "str",
    "'classification' proposes image labels; 'detection' proposes boxes (To Be Confirmed; "
    "confirm turns them into boxes).",
    choices=("classification", "detection"),
    form="Task",
    form_choices=(
        ("classification", "classification — labels per image"),
        ("detection", "detection — boxes"),
    ),
)

PRE_LABEL = OptionSet(
    "pre_label",
    (
        Option(
            "classes",
            None,
            "list[str] | None",
            "The model's output names, in order (needed for modules, TorchScript files and "
            "callables returning probability arrays or class indices). For detection, index 0 "
            "is the background, as in torchvision (to_torch(task='detection').classes).",
            check=_names,
        ),
        Option(
            "mapping",
            None,
            "dict[str, str] | None",
            "Model class -> dataset label; unmapped classes are dropped. Default: the classes "
            "that are dataset labels (all of them when the dataset has no labels yet).",
            check=_mapping,
        ),
        Option(
            "weights",
            None,
            "str | None",
            "Weights of a torchvision model given by name ('DEFAULT' or a weights name); "
            "classes then come from the weights' metadata. None: random weights (then pass "
            "classes).",
            check=_optional_str,
        ),
        Option(
            "target_precision",
            0.95,
            "float",
            "Hard-example cut, calibrated on the labeled images when there are enough of them "
            "(see calibrate_on_labels); otherwise scores under it are hard.",
            check=_precision,
        ),
        Option(
            "multi_label",
            False,
            "bool",
            "Sigmoid outputs: every class with p >= 0.5 is proposed.",
            check=_bool,
        ),
        DEVICE,
        Option(
            "input_size",
            224,
            "int",
            "Side of the square images are resized and cropped to for modules.",
            check=_int_at_least(16),
        ),
        Option("batch", 32, "int", "Images per model call.", check=_int_at_least(1)),
        INCLUDE_PROPOSED,
        Option(
            "calibrate_on_labels",
            True,
            "bool",
            "Fit the hard-example cut on the labeled images (10 or more) instead of using "
            "target_precision as a score floor.",
            check=_bool,
        ),
        TASK,
        Option(
            "min_score",
            0.3,
            "float",
            "Detection: boxes scored under this are dropped.",
            check=_share,
        ),
        Option(
            "nms_iou",
            0.5,
            "float",
            "Detection: of boxes of one label overlapping by more than this IoU only the best "
            "scored is kept (non-maximum suppression).",
            check=_fraction,
        ),
        Option(
            "max_boxes",
            100,
            "int",
            "Detection: at most this many boxes (the best scored) per image.",
            check=_int_at_least(1),
        ),
        QUEUE,
        PROGRESS,
    ),
    positional=(
        (
            "model",
            "Any",
            "A torch.nn.Module (with classes), a TorchScript file path, a torchvision model name "
            "(with weights), or a callable taking a list of PIL RGB images and returning "
            "[(labels, scores)] or an [N, C] probability array (with classes). For "
            "task='detection': a torchvision detection model (name with weights, or module) or "
            "TorchScript file returning torchvision-style dicts (boxes, labels, scores), or a "
            "callable taking one PIL RGB image and returning a list of box dicts (label, xmin, "
            "ymin, xmax, ymax in pixels, score).",
        ),
    ),
)

AUTO_GROUP = OptionSet(
    "auto_group",
    (
        Option(
            "n_groups",
            8,
            "int",
            "How many groups to cluster the images into.",
            check=_int_at_least(2),
        ),
        BACKBONE,
        WEIGHTS,
        DEVICE,
        SEED,
        QUEUE,
        PROGRESS,
    ),
)
