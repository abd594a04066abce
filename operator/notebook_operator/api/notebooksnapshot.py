"""NotebookSnapshot: a saved environment of one notebook (its packages and files), kept in the cloud as a PAI-DSW
instance snapshot or a ModelArts image, usable as the image of a new notebook."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from notebook_operator.api.meta import (
    CLOUD_REASON_MAX,
    LIST_MAX,
    TEXT_MAX,
    Condition,
    LocalObjectReference,
    Model,
    StatusModel,
    Text,
    cel,
    validations,
)

# A registry repository (host[:port]/path) and a ModelArts SWR organization, as a snapshot's and a policy's fields.
REPOSITORY_PATTERN = r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+"
SwrOrganization = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9._-]*$")]

SnapshotPhase = Literal["Pending", "Saving", "Ready", "Failed"]
SnapshotDeletionPolicy = Literal["Delete", "Retain"]
SNAPSHOT_FINALIZER = "cloudnotebooks.io/snapshot-finalizer"


class NotebookSnapshotSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.imageUrl) != has(self.imageName)",
                "exactly one of imageUrl (PAI-DSW) or imageName (ModelArts) must be set",
            ),
            cel("has(self.imageName) == has(self.imageTag)", "imageName and imageTag go together", ".imageTag"),
            cel(
                "self.notebookRef == oldSelf.notebookRef && has(self.imageUrl) == has(oldSelf.imageUrl) && "
                "(!has(self.imageUrl) || self.imageUrl == oldSelf.imageUrl) && "
                "has(self.imageName) == has(oldSelf.imageName) && (!has(self.imageName) || "
                "(self.imageName == oldSelf.imageName && self.imageTag == oldSelf.imageTag))",
                "a snapshot is taken once: only deletionPolicy may change",
            ),
        )
    )

    notebook_ref: LocalObjectReference = Field(description="The NotebookInstance (same namespace) to save.")
    image_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        pattern=rf"^{REPOSITORY_PATTERN}(:[A-Za-z0-9._-]+)?$",
        description="PAI-DSW: the registry URL the snapshot image is pushed to (CreateInstanceSnapshot ImageUrl).",
    )
    image_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$",
        description="ModelArts: the image's name (create-image name: lowercase letters, digits, . _ -).",
    )
    image_tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="ModelArts: the image's tag (create-image tag).",
    )
    image_namespace: SwrOrganization | None = Field(
        default=None, description="ModelArts: the SWR organization the image goes to (create-image namespace)."
    )
    exclude_paths: list[Text] | None = Field(
        default=None, max_length=LIST_MAX, description="PAI-DSW: paths left out of the snapshot."
    )
    deletion_policy: SnapshotDeletionPolicy = Field(
        default="Delete",
        description="Delete: deleting this resource deletes the cloud snapshot (or image). Retain: it stays.",
    )


class NotebookSnapshotStatus(StatusModel):
    observed_generation: int | None = None
    phase: SnapshotPhase | None = None
    provider: str | None = Field(default=None, max_length=64)
    account: str | None = Field(
        default=None, max_length=320, description="ProviderConfig/NAME or ClusterProviderConfig/NAME it was saved in."
    )
    instance_id: str | None = Field(default=None, max_length=128, description="The notebook's cloud instance.")
    cloud_name: str | None = Field(
        default=None, max_length=256, description="The name the snapshot request has in the cloud (found again by it)."
    )
    snapshot_id: str | None = Field(default=None, max_length=256, description="PAI-DSW SnapshotId.")
    image_id: str | None = Field(default=None, max_length=256, description="The image's id (ModelArts, PAI-DSW).")
    image_url: str | None = Field(default=None, max_length=TEXT_MAX, description="Where the image is (registry URL).")
    cloud_status: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=CLOUD_REASON_MAX, description="Why it failed or waits.")
    requested_at: datetime | None = None
    ready_at: datetime | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)


class NotebookSnapshot(Model):
    model_config = ConfigDict(extra="ignore")

    spec: NotebookSnapshotSpec
    status: NotebookSnapshotStatus | None = None
