"""The shared photo rules of pets, reports and chat (contract D3g, D3h, D7, D15).

Every upload is decoded to verify it (name and content type are never trusted); only JPEG, PNG, GIF and
WebP are accepted, each at most 10 MB; the pixel size is read from the header and checked before any
decoding (decompression bombs); truncated files are refused; the EXIF orientation is applied; colours are
converted to sRGB; all metadata (EXIF with GPS, XMP, ICC, comments) is dropped by re-encoding the pixels
(JPEG, or WebP when there is transparency; animations keep their first frame); a thumbnail is made; both
are stored under random keys. Decoding runs in a bounded thread pool, never on the event loop.
"""

from pawgle.common.photos.decode import ProcessedPhoto, decode_photo, process_photo
from pawgle.common.photos.owned import key_of_reference, owned_photo_keys, parse_existing_images
from pawgle.common.photos.pipeline import (
    PhotoPipeline,
    PhotoUpload,
    StoredPhoto,
    check_photo_count,
    is_photo_key,
    read_upload,
    thumbnail_key_for,
)
from pawgle.common.photos.rules import (
    DEFAULT_RULES,
    ExistingPhotoInvalid,
    ExistingPhotoNotOwned,
    NoPhotoProvided,
    PhotoDamaged,
    PhotoDimensionsTooLarge,
    PhotoEmpty,
    PhotoRejected,
    PhotoRules,
    PhotoTooLarge,
    PhotoTypeNotAllowed,
    TooManyPhotos,
)

__all__ = [
    "DEFAULT_RULES",
    "ExistingPhotoInvalid",
    "ExistingPhotoNotOwned",
    "NoPhotoProvided",
    "PhotoDamaged",
    "PhotoDimensionsTooLarge",
    "PhotoEmpty",
    "PhotoPipeline",
    "PhotoRejected",
    "PhotoRules",
    "PhotoTooLarge",
    "PhotoTypeNotAllowed",
    "PhotoUpload",
    "ProcessedPhoto",
    "decode_photo",
    "StoredPhoto",
    "TooManyPhotos",
    "check_photo_count",
    "is_photo_key",
    "key_of_reference",
    "owned_photo_keys",
    "parse_existing_images",
    "process_photo",
    "read_upload",
    "thumbnail_key_for",
]
