"""LocalSubjectAccessReview (authorization.k8s.io/v1): a SubjectAccessReview inside one namespace.

Create-only and never stored: ``apiserver/reviews.py`` asks the authorizer.
"""

from __future__ import annotations

from ..base import Strategy


class LocalSubjectAccessReviewStrategy(Strategy):
    group = "authorization.k8s.io"
    kind = "LocalSubjectAccessReview"
    plural = "localsubjectaccessreviews"
    singular = "localsubjectaccessreview"
    namespaced = True
    verbs = ("create",)
    model = "V1LocalSubjectAccessReview"
    protobuf_messages = {
        "LocalSubjectAccessReview": ("metadata:1:ObjectMeta spec:2:SubjectAccessReviewSpec "
                                     "status:3:SubjectAccessReviewStatus"),
    }


STRATEGY = LocalSubjectAccessReviewStrategy()
