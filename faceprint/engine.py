"""The engine: one object that detects, embeds, verifies, enrols and identifies.

    from faceprint import Engine
    engine = Engine()                       # "accurate" profile, thresholds at FMR 1e-3
    engine.verify("a.jpg", "b.jpg")         # Verification(similarity, is_match, threshold, fmr)
    engine.enroll("Ada", ["ada1.jpg", "ada2.jpg"], gallery="people.db")
    engine.identify("group.jpg", gallery="people.db")

Models are loaded on first use and shared by every engine in the process.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .pipeline.detection import FaceFinder
from .pipeline.embedding import Recognizer
from .errors import (
    DuplicateIdentityError,
    FaceprintError,
    ModelMismatchError,
    MorphSuspectedError,
    MultipleFacesError,
    NoFaceError,
    NotAFaceError,
    UnsupportedInputError,
)
from .gallery import EnrolmentItem, Gallery, GalleryStore, PersonRecord, is_postgres_url, open_gallery, stored_digests
from .gallery.records import repeated_items
from .gallery.names import normalise_name
from .matching.normalisation import ScoreNormaliser, fair_model_id, is_fair_model, plain_model_id
from .models import registry
from .pipeline.image_io import DEFAULT_MAX_PIXELS, ImageInput, describe_source, load_image
from .pipeline.quality import QualityGate
from .profiles import DEFAULT_FMR, DEFAULT_PROFILE, Profile, reenrol_hint
from .profiles import get as get_profile
from .types import Candidate, Face, Identification, Liveness, Template, Verification, tied_names

if TYPE_CHECKING:
    from .attributes import Analysis, FaceAnalyzer
    from .models.pad_passive import PassiveLiveness
    from .privacy.cancelable import CancelableTransform
    from .privacy.crypto import GalleryKey
    from .privacy.ood import OodCheck

log = logging.getLogger(__name__)

GalleryLike = str | os.PathLike | Gallery | GalleryStore  # a path, a postgresql:// URL, or an open store

#: Candidates searched per face by :meth:`Engine.identify` at least, so that ties are seen even with k=1.
TIE_SEARCH_K = 5

#: False-match rate of the duplicate-identity check at enrolment (:attr:`Engine.duplicate_threshold`).
#: Stricter than identification's, because a new person is compared with everyone enrolled: on
#: LFW View 1 with the fast profile (1,165 people enrolled), the FMR 1e-3 threshold would refuse
#: 58% of 1,930 people who are not enrolled at all, FMR 1e-5 refuses 1.6% and still catches 93% of
#: enrolled people enrolled again from another photo under a new name (and every re-used photo).
DUPLICATE_FMR = 1e-5


def image_digest(image: np.ndarray) -> str:
    """SHA-256 (64 lower-case hex digits) of a decoded image: its shape, dtype and pixel bytes.

    Two files give the same digest when they decode to the same pixels (a copy of a file, or the
    same picture saved again with other metadata); a re-compressed JPEG does not. Used to enrol
    each image at most once per person (:attr:`faceprint.gallery.EnrolmentItem.sha256`).
    """
    pixels = np.ascontiguousarray(image)
    header = f"{pixels.dtype.str}:{'x'.join(str(n) for n in pixels.shape)}:".encode()
    return hashlib.sha256(header + pixels.tobytes()).hexdigest()


def fair_hint(found: str, wanted: str) -> str | None:
    """What to do when a gallery of model ``found`` is opened by an engine of model ``wanted`` and the two
    differ only in fair score normalisation (:func:`faceprint.matching.normalisation.fair_model_id`); else None."""
    if found == wanted or plain_model_id(found) != plain_model_id(wanted):
        return None
    if is_fair_model(found):
        return (f"its scores are fair-normalised ({found}): open it with fair scores (--fair; fair=True in Python; "
                f"a service collection created with \"fair\": true), or re-enrol its people into a new gallery "
                f"without --fair")
    return (f"its scores are not fair-normalised ({found}): open it without --fair (fair=False), or re-enrol its "
            f"people into a new gallery with --fair (faceprint enroll --fair --tree PHOTOS --gallery NEW.db)")


def _with_reenrol_hint(error: ModelMismatchError, wanted: str = "") -> ModelMismatchError:
    """``error``, or a copy whose message says what to do when the gallery it names (``found``) was made
    by a previous built-in profile (:func:`faceprint.profiles.reenrol_hint`) or differs from the
    engine's model ``wanted`` only in fair score normalisation (:func:`fair_hint`)."""
    hint = (fair_hint(error.found, wanted) or reenrol_hint(error.found)) if error.found else None
    return ModelMismatchError(f"{error}: {hint}", found=error.found) if hint else error


def no_usable_face_error(label: str, faces: Sequence[Face]) -> NoFaceError:
    """The NoFaceError for an image ``label`` whose detected ``faces`` (possibly none) are all unusable.

    The message says why the detected faces were rejected (their quality reasons) and what photo to
    use instead.
    """
    if faces:
        reasons = ", ".join(sorted({r for f in faces for r in f.quality_reasons})) or "low quality"
        return NoFaceError(f"{label}: {len(faces)} face(s) found, none usable ({reasons}); give a sharper, "
                           f"well-lit photo with the face turned towards the camera and at least 40 px wide")
    return NoFaceError(f"{label}: no face found; give a photo in which the face is clearly visible "
                       f"and at least 20 px wide")


class Engine:
    """Face recognition with one profile, one detector and one decision threshold.

    ``fmr`` picks the calibrated threshold (false-match rate on impostor pairs); ``threshold``
    overrides it with an explicit cosine similarity.

    ``fair=True`` compares and searches through the fair score normaliser shipped for the profile
    (:class:`~faceprint.matching.normalisation.ScoreNormaliser`: each score is shifted by the
    offsets of the two templates' clusters, so that no region of the template space, such as
    children's or one ethnicity's faces, gets many times the false-match rate of another), with
    thresholds calibrated on normalised scores. Its templates and galleries carry the model id
    ``<profile model id>+fair``: a gallery enrolled without it is refused, and the reverse.
    Raises :class:`~faceprint.matching.normalisation.NormaliserMissingError` for a profile without
    a shipped normaliser, and UnsupportedInputError with a cancelable ``transform``.
    """

    def __init__(
        self,
        profile: str | Profile = DEFAULT_PROFILE,
        *,
        detector: str = "yunet",
        fmr: float = DEFAULT_FMR,
        threshold: float | None = None,
        gate: QualityGate | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        key: GalleryKey | None = None,
        transform: CancelableTransform | None = None,
        check_domain: bool = False,
        check_morph: bool = False,
        fair: bool = False,
    ) -> None:
        self.profile = profile if isinstance(profile, Profile) else get_profile(profile)
        if fair and transform is not None:
            raise UnsupportedInputError("fair scores (--fair) cannot be used with cancelable templates: the "
                                        "normaliser needs the plain templates; drop --fair or the transform key")
        self.normaliser: ScoreNormaliser | None = (
            ScoreNormaliser.for_profile(self.profile.name, self.profile.model_id) if fair else None)
        self.detector_name = detector
        self.fmr = fmr
        self.threshold = threshold if threshold is not None else self.calibrated_threshold(fmr)
        self.gate = gate or QualityGate()
        self.max_pixels = max_pixels
        self._finder: FaceFinder | None = None
        self._recognizer: Recognizer | None = None
        self._liveness: PassiveLiveness | None = None
        self._analyzer: FaceAnalyzer | None = None
        self.key, self.transform = key, transform
        self.check_domain = check_domain
        self.check_morph = check_morph
        self._ood: OodCheck | None | bool = False  # False: not loaded yet; None: no check for this profile

    @property
    def duplicate_threshold(self) -> float:
        """The similarity at or above which an enrolment face counts as another person's (cosine).

        The profile's threshold at :data:`DUPLICATE_FMR`, or :attr:`threshold` when that is higher
        or the profile is not calibrated that far.
        """
        try:
            return max(self.threshold, self.calibrated_threshold(DUPLICATE_FMR))
        except FaceprintError:
            return self.threshold

    @property
    def fair(self) -> bool:
        """Whether scores go through the fair score normaliser (``Engine(fair=True)``)."""
        return self.normaliser is not None

    def calibrated_threshold(self, fmr: float) -> float:
        """The threshold calibrated at false-match rate ``fmr`` for this engine's scores (fair or plain)."""
        return self.normaliser.threshold_at(fmr) if self.normaliser else self.profile.threshold(fmr)

    @property
    def model_id(self) -> str:
        """The id every template of this engine is tagged with (``+fair`` appended with fair scores)."""
        return fair_model_id(self.profile.model_id) if self.normaliser else self.profile.model_id

    @property
    def finder(self) -> FaceFinder:
        """The detector with its quality gate (loaded on first use)."""
        if self._finder is None:
            self._finder = FaceFinder(registry.load_detector(self.detector_name), self.gate)
        return self._finder

    @property
    def recognizer(self) -> Recognizer:
        """The profile's embedders (loaded on first use)."""
        if self._recognizer is None:
            embedders = [registry.load_embedder(p.model) for p in self.profile.parts]
            self._recognizer = Recognizer(self.model_id, self.profile.parts, embedders, self.profile.flip)
        return self._recognizer

    def load(self, image: ImageInput, *, label: str | None = None) -> np.ndarray:
        """The image as RGB uint8, with this engine's size limit; errors name ``label`` when given."""
        return load_image(image, max_pixels=self.max_pixels, label=label)

    def detect(self, image: ImageInput, *, usable_only: bool = False) -> list[Face]:
        """Every face in ``image``, largest first, each with its quality score and reasons.

        Faces from about 20 px wide to the whole frame, in the image's best orientation
        (:class:`~faceprint.pipeline.detection.FaceFinder`; ``Face.orientation``).
        """
        return self.finder.find(self.load(image), usable_only=usable_only)

    def single_face(self, image: ImageInput, *, largest: bool = False) -> Face:
        """The one usable face in ``image``.

        The face is looked for in every orientation and at every size from the detector's main
        pass up to the whole frame; faces too small for that pass (far-off bystanders in a big
        photo, see ``faceprint.models.yunet``) are looked for only when no usable face is found.
        Raises NoFaceError when there is none (saying why detected faces were rejected), and
        MultipleFacesError when there are several, unless ``largest`` picks the biggest.
        """
        pixels = self.load(image)
        faces = self.finder.find(pixels, small_faces=False)
        usable = [f for f in faces if self.gate.passes(f)]
        if not usable and self.finder.detector.has_small_face_pass(pixels.shape):
            faces = self.finder.find(pixels)
            usable = [f for f in faces if self.gate.passes(f)]
        label = describe_source(image)
        if not usable:
            raise no_usable_face_error(label, faces)
        if len(usable) > 1 and not largest:
            raise MultipleFacesError(f"{label}: {len(usable)} faces found where one is required; use the largest "
                                     f"with --largest (largest=True in Python), or crop the photo to one face")
        return usable[0]

    def embed_faces(self, faces: Sequence[Face]) -> list[Template]:
        """One template per face."""
        return self.recognizer.embed(faces)

    def embed(self, subject: ImageInput | Face, *, largest: bool = False) -> Template:
        """The template of a face, or of the single face in an image."""
        face = subject if isinstance(subject, Face) else self.single_face(subject, largest=largest)
        return self.embed_faces([face])[0]

    def compare(self, a: Template, b: Template) -> float:
        """Cosine similarity of two templates of this engine's model (fair-normalised with ``fair=True``)."""
        for t in (a, b):
            if t.model != self.model_id:
                hint = fair_hint(t.model, self.model_id)
                raise ModelMismatchError(f"template of model '{t.model}' given to engine of model '{self.model_id}'"
                                         + (f"; {hint}" if hint else ""))
        if self.normaliser is not None:
            return float(self.normaliser.normalise(a.vector, b.vector)[0, 0])
        return float(np.dot(a.vector, b.vector))

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity matrix [n_a, n_b] of template vectors ``a`` and ``b`` (rows); fair-normalised if ``fair``."""
        if self.normaliser is not None:
            return self.normaliser.normalise(a, b)
        return np.atleast_2d(a).astype(np.float32) @ np.atleast_2d(b).astype(np.float32).T

    def search(self, store: GalleryStore, vectors: np.ndarray, k: int = 5) -> list[list[Candidate]]:
        """The top ``k`` enrolled people of ``store`` for each row of ``vectors`` [m, dim], best first.

        Plain scores: the gallery's own search. Fair scores: an exhaustive search of the gallery's
        templates (:meth:`~faceprint.matching.normalisation.ScoreNormaliser.search`) on normalised
        scores, a person's score the maximum over their templates.
        """
        if self.normaliser is None:
            return store.search_many(vectors, k=k)
        _, person_ids, stored = store.matrix()
        names = {p.id: p.name for p in store.persons()}
        ranked = self.normaliser.search(vectors, stored, person_ids, k)
        return [[Candidate(names[p], p, score) for p, score in row] for row in ranked]

    @property
    def analyzer(self) -> FaceAnalyzer:
        """The face-attribute reader (:class:`~faceprint.attributes.FaceAnalyzer`) with this engine's quality gate."""
        if self._analyzer is None:
            from .attributes import FaceAnalyzer

            self._analyzer = FaceAnalyzer(self.gate)
        return self._analyzer

    def analyze(self, image: ImageInput, attributes: str | Iterable[str] | None = None, *,
                label: str | None = None) -> Analysis:
        """Age, gender, expression, head pose, eye state and quality of every face in ``image``, largest first.

        ``attributes`` picks what to compute (``{"age", "expression"}`` or ``"age,expression"``;
        None: all of :data:`faceprint.attributes.ATTRIBUTES`); only those models run. Every detected
        face is listed, usable for recognition or not; an attribute a face cannot carry (too small,
        blurred, turned away) is None with the reason in ``not_estimated``. A photo without a face
        gives no faces and a ``reason`` (naming ``label``, else the source). Raises the loading errors of :meth:`load` (a corrupt file:
        :class:`~faceprint.errors.ImageDecodeError`), :class:`~faceprint.errors.UnknownAttributeError`
        and :class:`~faceprint.errors.ModelUnavailableError`.
        """
        from .attributes import Analysis, parse_attributes

        wanted = parse_attributes(attributes)
        pixels = self.load(image, label=label)
        faces = self.finder.find(pixels)
        reason = None if faces else no_usable_face_error(label or describe_source(image), faces).args[0]
        return Analysis(faces=self.analyzer.analyze(faces, wanted), attributes=wanted,
                        image_size=(int(pixels.shape[1]), int(pixels.shape[0])), reason=reason)

    @property
    def liveness_model(self) -> PassiveLiveness:
        """The passive presentation-attack detector (loaded on first use)."""
        if self._liveness is None:
            self._liveness = registry.load("pad-passive")
        return self._liveness

    def check_live(self, face: Face) -> Liveness:
        """Passive liveness of a detected face: is it a live person, or a photo or screen?"""
        if face.image is None:
            raise UnsupportedInputError("a liveness check needs the face's image (a Face from detect())")
        return self.liveness_model.check(face.image, face)

    def verify(
        self, a: ImageInput | Face | Template, b: ImageInput | Face | Template, *, largest: bool = False,
        require_live: bool = False,
    ) -> Verification:
        """Are ``a`` and ``b`` the same person? Each may be an image (one face), a Face or a Template.

        With ``require_live`` both faces must pass the passive liveness check first (so templates
        are not accepted); a face that fails it is not compared, and the result says why.
        """
        if require_live:
            if any(isinstance(x, Template) for x in (a, b)):
                raise UnsupportedInputError("require_live needs images or faces, not templates")
            faces = [x if isinstance(x, Face) else self.single_face(x, largest=largest) for x in (a, b)]
            checks = tuple(self.check_live(f) for f in faces)
            failed = [f"{name}: {c.reason}" for name, c in zip(("a", "b"), checks) if not c.is_live]
            if failed:
                return Verification(similarity=float("nan"), is_match=False, threshold=self.threshold,
                                    fmr=self.fmr, model=self.model_id, liveness=checks, rejected="; ".join(failed))
            ta, tb = self.embed_faces(faces)
        else:
            checks = ()
            ta, tb = (x if isinstance(x, Template) else self.embed(x, largest=largest) for x in (a, b))
        similarity = self.compare(ta, tb)
        return Verification(
            similarity=similarity,
            is_match=similarity >= self.threshold,
            threshold=self.threshold,
            fmr=self.fmr,
            model=self.model_id,
            liveness=checks,
        )

    def open_gallery(self, gallery: GalleryLike, *, create: bool = True) -> GalleryStore:
        """A gallery bound to this engine's model (created when missing and ``create``).

        ``gallery`` is an open store, a SQLite file path, or a ``postgresql://`` URL. A gallery of
        another model raises ModelMismatchError; when a newer profile replaced the one that made it,
        the message says how to re-enrol (:func:`faceprint.profiles.reenrol_hint`).
        """
        if isinstance(gallery, (Gallery, GalleryStore)):
            if gallery.model != self.model_id:
                raise _with_reenrol_hint(ModelMismatchError(
                    f"gallery {gallery.path} was built with model '{gallery.model}', "
                    f"this engine uses '{self.model_id}'", found=gallery.model), self.model_id)
            return gallery
        privacy = {"key": self.key, "transform": self.transform} if self.key or self.transform else {}
        try:
            if create:
                return open_gallery(gallery, model=self.model_id, dim=self.recognizer.dim or None, **privacy)
            return open_gallery(gallery, model=self.model_id, **privacy)
        except ModelMismatchError as exc:
            hinted = _with_reenrol_hint(exc, self.model_id)
            if hinted is exc:
                raise
            raise hinted from exc

    @property
    def ood_check(self) -> OodCheck | None:
        """The out-of-domain (face / not a face) check fitted for this profile, or None if there is none."""
        if self._ood is False:
            from .privacy.ood import OodCheck, OodModelMissingError

            try:
                self._ood = OodCheck.for_profile(self.profile.name, self.profile.model_id)
            except (OodModelMissingError, ModelMismatchError):
                self._ood = None
        return self._ood

    def check_not_morph(self, face: Face, label: str = "face") -> None:
        """Raise MorphSuspectedError when the morph detector flags ``face`` (enrolment guard)."""
        result = registry.load("morph-detector").check(face.image, face)
        if result.is_morph:
            raise MorphSuspectedError(f"{label}: looks like a morph of two faces (score {result.score:.2f} >= "
                                      f"{result.threshold:.2f}); enrol from an unedited photo taken in person")

    def check_in_domain(self, template: Template, label: str = "face") -> None:
        """Raise NotAFaceError when ``template`` does not look like a face's (enrolment guard)."""
        check = self.ood_check if self.check_domain else None
        if check is None:
            return
        is_face, score = check.check(replace(template, model=self.profile.model_id) if self.fair else template)
        if not is_face:
            raise NotAFaceError(f"{label}: the template does not look like a face's (out-of-domain score "
                                f"{score:.1f} > {check.threshold:.1f}); use a clearer photo of the face")

    def enrolment_items(self, images: Iterable[ImageInput], *, largest: bool = False) -> list[EnrolmentItem]:
        """Templates, with source, box, quality and image digest, for the one face in each image; any failure raises."""
        items = []
        for image in images:
            face = self.single_face(image, largest=largest)
            if self.check_morph:
                self.check_not_morph(face, describe_source(image))
            template = self.embed_faces([face])[0]
            self.check_in_domain(template, describe_source(image))
            items.append(
                EnrolmentItem(template=template, source=describe_source(image), box=face.box.as_list(),
                              quality=face.quality, sha256=None if face.image is None else image_digest(face.image))
            )
        return items

    def enroll(
        self,
        person: str,
        images: Iterable[ImageInput],
        gallery: GalleryLike,
        *,
        metadata: dict | None = None,
        largest: bool = False,
        allow_duplicate: bool = False,
    ) -> PersonRecord:
        """Enrol ``person`` from ``images`` (one face each) in one transaction.

        Every image is processed before anything is written: a bad image raises its documented
        error and leaves the gallery exactly as it was. The name is made canonical
        (:func:`faceprint.gallery.names.normalise_name`; :class:`~faceprint.errors.InvalidNameError`); an
        image already enrolled for the person (same decoded pixels) is not stored again; a face
        that matches another enrolled person raises :class:`~faceprint.errors.DuplicateIdentityError`
        unless ``allow_duplicate`` (see :meth:`enroll_items`).
        """
        person = normalise_name(person)
        return self.enroll_items(person, self.enrolment_items(images, largest=largest), gallery,
                                 metadata=metadata, allow_duplicate=allow_duplicate)

    def enroll_items(
        self, person: str, items: Sequence[EnrolmentItem], gallery: GalleryLike, *, metadata: dict | None = None,
        allow_duplicate: bool = False,
    ) -> PersonRecord:
        """Write already-computed enrolment items for ``person`` in one transaction.

        Unless ``allow_duplicate``, every item is first searched in the gallery: a face scoring at
        or above :attr:`duplicate_threshold` against a person other than ``person`` (the same face
        under another name?) raises :class:`~faceprint.errors.DuplicateIdentityError`, naming
        that person and the score, and nothing is written. Items whose image is already enrolled
        for ``person`` are skipped by the gallery (:meth:`already_enrolled` lists them).
        """
        person = normalise_name(person)
        store = self.open_gallery(gallery)
        try:
            if not allow_duplicate:
                self.check_not_enrolled_as_other(person, items, store)
            return store.enroll(person, items, metadata=metadata)
        finally:
            if store is not gallery:
                store.close()

    def check_not_enrolled_as_other(self, person: str, items: Sequence[EnrolmentItem], store: GalleryStore) -> None:
        """Raise DuplicateIdentityError when an item's face matches someone other than ``person`` in ``store``.

        A match is a cosine similarity at or above :attr:`duplicate_threshold`; the error names the
        best-scoring other person, the score and the image.
        """
        person = normalise_name(person)
        if not items:
            return
        threshold = self.duplicate_threshold
        ranked = self.search(store, np.stack([item.template.vector for item in items]), k=2)
        hits = [(c.score, c.person, item) for item, cands in zip(items, ranked, strict=True) for c in cands
                if c.person != person and c.score >= threshold]
        if not hits:
            return
        score, other, item = max(hits, key=lambda h: h[0])
        raise DuplicateIdentityError(
            f"{item.source or 'enrolment image'}: this face already matches {other!r} in {store.path} "
            f"(similarity {score:.4f} >= duplicate threshold {threshold:.4f}): the same person under another name? "
            f"Enrol it as {other!r}, or allow it (--allow-duplicate, allow_duplicate=True) if {person!r} is "
            f"someone else", person=person, other=other, score=score)

    def already_enrolled(self, person: str, items: Sequence[EnrolmentItem], gallery: GalleryLike) -> list[int]:
        """Indexes of the ``items`` whose image is already enrolled for ``person`` (or repeats an earlier item's).

        Those are the items the gallery skips on enrolment (same image digest). ``[]`` when the
        person is not in the gallery, or the gallery does not exist yet.
        """
        person = normalise_name(person)
        if not any(item.sha256 for item in items):
            return []
        if isinstance(gallery, (str, os.PathLike)) and not is_postgres_url(gallery) and not os.path.exists(gallery):
            stored: set[str] = set()
        else:
            store = self.open_gallery(gallery)
            try:
                stored = stored_digests(store, person)
            finally:
                if store is not gallery:
                    store.close()
        return repeated_items(items, stored)

    def skip_reason(self, face: Face) -> str | None:
        """Why ``face`` would not be searched, e.g. ``"low quality (profile, 0.21)"``; None for a usable face."""
        if self.gate.passes(face):
            return None
        return f"low quality ({', '.join((*face.quality_reasons, f'{face.quality:.2f}'))})"

    def identify(
        self, image: ImageInput, gallery: GalleryLike, *, k: int = 5, require_live: bool = False
    ) -> list[Identification]:
        """For every detected face in ``image`` (largest first): the top ``k`` enrolled people, or unknown.

        A face that fails the quality gate is not searched: its result has no candidates and
        ``skipped`` says why (``"low quality (profile, 0.21)"``). With ``require_live`` each usable
        face is first checked for liveness; a face that fails is not searched (no candidates) and its
        result carries the reason (``rejected``). When two or more different people score within
        :data:`faceprint.types.TIE_MARGIN` of the best, all at or above the threshold, ``tied``
        names them (at least :data:`TIE_SEARCH_K` people are searched for that, whatever ``k``).
        """
        faces = self.detect(image)
        skipped = [self.skip_reason(f) for f in faces]
        checks = [self.check_live(f) if require_live and s is None else None
                  for f, s in zip(faces, skipped, strict=True)]
        search = [s is None and (c is None or c.is_live) for s, c in zip(skipped, checks, strict=True)]
        searched = [f for f, go in zip(faces, search, strict=True) if go]
        store = self.open_gallery(gallery, create=False)
        try:
            templates = self.embed_faces(searched)
            ranked = (self.search(store, np.stack([t.vector for t in templates]), k=max(k, TIE_SEARCH_K))
                      if templates else [])
        finally:
            if store is not gallery:
                store.close()
        ties = iter([tied_names(r, self.threshold) for r in ranked])
        searched_ranks = iter([r[:k] for r in ranked])  # in the order of ``searched``: the faces that passed
        return [
            Identification(face=face, candidates=next(searched_ranks) if go else [], threshold=self.threshold,
                           fmr=self.fmr, liveness=check, skipped=skip, tied=next(ties) if go else ())
            for face, skip, check, go in zip(faces, skipped, checks, search, strict=True)
        ]

