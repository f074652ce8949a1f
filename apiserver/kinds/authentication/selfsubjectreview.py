"""SelfSubjectReview (authentication.k8s.io/v1): "who am I?" (``kubectl auth whoami``).

Create-only and never stored: ``apiserver/reviews.py`` answers with the caller's UserInfo.
"""

from __future__ import annotations

from ..base import Strategy


class SelfSubjectReviewStrategy(Strategy):
    group = "authentication.k8s.io"
    kind = "SelfSubjectReview"
    plural = "selfsubjectreviews"
    singular = "selfsubjectreview"
    namespaced = False
    verbs = ("create",)
    model = "V1SelfSubjectReview"
    protobuf_messages = {
        "SelfSubjectReview": "metadata:1:ObjectMeta status:2:SelfSubjectReviewStatus",
        "SelfSubjectReviewStatus": "userInfo:1:UserInfo",
    }


STRATEGY = SelfSubjectReviewStrategy()
