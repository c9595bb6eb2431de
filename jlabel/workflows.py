"""The workflows on top of a dataset's data: versions, the random sample check, auto-labeling
jobs, exports and the widget. Part of :class:`jlabel.Dataset` (a mixin: each method delegates
to the module that does the work)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from jlabel.args import explain_bad_calls
from jlabel.options import AUTO_GROUP, AUTO_LABEL, PRE_LABEL, takes
from jlabel.sample_check import DEFAULT_SIZE, SampleCheck
from jlabel.versions import Versions

if TYPE_CHECKING:
    from jlabel.autolabel import Job, JobQueue
    from jlabel.widget import Labeler


@explain_bad_calls
class Workflows:
    """Versions, sample check, jobs, exports and the widget of a `Dataset`."""

    user: str
    _versions: Versions
    _check: SampleCheck
    _jobs: JobQueue | None

    # ------------------------------------------------------------------ checking proposals
    def sample_proposals(self, n: int = DEFAULT_SIZE, *, seed: int | None = None) -> list[str]:
        """Draw `n` random To Be Confirmed proposals for the user to review; returns their ids.

        Review each (confirm, edit then confirm, or reject); `sample_check()` then estimates
        the precision of the remaining proposals from the share confirmed as proposed.
        """
        return self._check.draw(n, seed)

    def sample_check(self) -> dict[str, Any] | None:
        """Progress and precision estimate of the last `sample_proposals` draw (None: none)."""
        return self._check.status()

    def to_label_next(self, *, n: int = 20, seed: int = 0, tab: str | None = None) -> list[str]:
        """The `n` images without labels whose labels would help the next auto-label job most.

        Uncertain proposals of the last auto-label job, spread over its feature space (an
        uncertainty-weighted k-center away from the labeled images); images that job did not
        see come first, in a random order (all of them before any job ran).

        Parameters
        ----------
        n : int, default 20
            How many to suggest (fewer when fewer images are without labels).
        seed : int, default 0
            Seed of the random order of images the last job did not see.
        tab : str | None, default None
            None: any image without labels; ``"unlabeled"``: only images without a proposal;
            ``"to_confirm"``: only proposals not confirmed yet.

        Returns
        -------
        list[str]
            Sample ids, most useful first; never one that has labels.
        """
        from jlabel.autolabel.label_next import to_label_next

        return to_label_next(self, n=n, seed=seed, tab=tab)

    # ------------------------------------------------------------------ versions
    def create_version(self, name: str | None = None, description: str = "") -> dict[str, Any]:
        """Save the current state as an immutable version and make it the current one."""
        return self._versions.create(name, description, user=self.user)

    def versions(self) -> pd.DataFrame:
        """All versions, oldest first, with counts and which one is current."""
        return self._versions.listing()

    def use_version(self, name: str) -> None:
        """Make a version current; the working state is first kept as an ``autosave-…`` version."""
        self._versions.use(name, user=self.user)

    def version_frame(self, name: str) -> pd.DataFrame:
        """A version's samples (``missing`` is True where the source file is gone)."""
        return self._versions.frame(name)

    # ------------------------------------------------------------------ jobs
    @takes(AUTO_LABEL, returns="Job")
    def auto_label(self, **options: Any) -> Job:
        """Start an active-learning job that proposes labels for the unlabeled images.

        The job runs in a background thread (one at a time per dataset; later ones queue);
        proposals go to the To Be Confirmed tab with hard examples marked.
        """
        from jlabel.autolabel import start_auto_label

        return start_auto_label(self, **options)

    @takes(PRE_LABEL, returns="Job")
    def pre_label(self, model: Any, **options: Any) -> Job:
        """Start a job that labels the unlabeled images with an existing model."""
        from jlabel.autolabel import start_pre_label

        return start_pre_label(self, model, **options)

    @takes(AUTO_GROUP, returns="Job")
    def auto_group(self, **options: Any) -> Job:
        """Start a job that clusters the images by their embeddings and sets their ``group``."""
        from jlabel.autolabel import start_auto_group

        return start_auto_group(self, **options)

    @property
    def jobs(self) -> JobQueue:
        """The auto-labeling job queue of this dataset (running and queued jobs)."""
        if self._jobs is None:
            from jlabel.autolabel import JobQueue

            self._jobs = JobQueue(self)
        return self._jobs

    def job_history(self) -> list[dict[str, Any]]:
        """Past and current jobs, newest first."""
        from jlabel.autolabel import job_history

        return job_history(self)

    # ------------------------------------------------------------------ other layers
    def export(self, path: str | os.PathLike[str], **options: Any) -> str:
        """Export labeled samples (ImageFolder, CSV, COCO, VOC); see ``jlabel.export.export``."""
        from jlabel.export import export

        return export(self, path, **options)

    def to_torch(self, **options: Any) -> Any:
        """A ``torch.utils.data.Dataset`` of (image tensor, target); see
        ``jlabel.export.to_torch``."""
        from jlabel.export import to_torch

        return to_torch(self, **options)

    def labeler(self, **options: Any) -> Labeler:
        """The labeling widget for this dataset (``jlabel.Labeler``)."""
        from jlabel.widget import Labeler

        return Labeler(self, **options)
