"""SelfSubjectAccessReview (authorization.k8s.io/v1): "may I do that?" (``kubectl auth can-i``).

Create-only and never stored: ``apiserver/reviews.py`` asks the authorizer about the caller.
"""

from __future__ import annotations

from ..base import Strategy


class SelfSubjectAccessReviewStrategy(Strategy):
    group = "authorization.k8s.io"
    kind = "SelfSubjectAccessReview"
    plural = "selfsubjectaccessreviews"
    singular = "selfsubjectaccessreview"
    namespaced = False
    verbs = ("create",)
    model = "V1SelfSubjectAccessReview"
    protobuf_messages = {
        "SelfSubjectAccessReview": ("metadata:1:ObjectMeta spec:2:SelfSubjectAccessReviewSpec "
                                    "status:3:SubjectAccessReviewStatus"),
        "SelfSubjectAccessReviewSpec": ("resourceAttributes:1:ResourceAttributes "
                                        "nonResourceAttributes:2:NonResourceAttributes"),
    }


STRATEGY = SelfSubjectAccessReviewStrategy()
