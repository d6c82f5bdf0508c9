"""A print job: a document for a profile, rendered and encoded once, however often it is retried."""

from __future__ import annotations

import datetime as dt
import functools
import secrets

from hardware.encoding import encode
from hardware.layout import Document
from hardware.profiles import Profile
from hardware.rendering import Rendered, render


def new_job_id() -> str:
    """A short random id that names a job in logs and on the attendant console."""
    return secrets.token_hex(6)


class PrintJob:
    """One document to print; rendering and encoding happen lazily, on the print worker."""

    def __init__(self, document: Document, profile: Profile, *, job_id: str | None = None,
                 submitted_at: dt.datetime | None = None):
        """Remember what to print; nothing is rendered yet."""
        self.job_id = job_id or new_job_id()
        self.document = document
        self.profile = profile
        self.submitted_at = submitted_at
        self.attempts = 0

    @property
    def title(self) -> str:
        """A title for spoolers and file names (a ticket number, never personal data)."""
        return self.document.title

    @functools.cached_property
    def rendered(self) -> Rendered:
        """The document rendered at the profile's width."""
        return render(self.document, self.profile.width)

    @property
    def image(self):
        """The whole job as one 1-bit image (what the paper will show)."""
        return self.rendered.image

    @functools.cached_property
    def data(self) -> bytes:
        """The ESC/POS bytes of the job."""
        return encode(self.rendered, self.profile)

    def __repr__(self) -> str:
        """Job id and title, for logs."""
        return f"<PrintJob {self.job_id} {self.title!r}>"
