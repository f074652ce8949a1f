"""SubjectAccessReview (authorization.k8s.io/v1): "may this user do that?", asked by kubelets and webhooks.

Create-only and never stored: ``apiserver/reviews.py`` asks the authorizer. The message tables
here are shared by the whole SubjectAccessReview family (Self-, Local-).
"""

from __future__ import annotations

from ..base import Strategy

SPEC_MESSAGES = {
    "ResourceAttributes": ("namespace:1:s verb:2:s group:3:s version:4:s resource:5:s subresource:6:s name:7:s "
                           "fieldSelector:8:FieldSelectorAttributes labelSelector:9:LabelSelectorAttributes"),
    "FieldSelectorAttributes": "rawSelector:1:s",
    "LabelSelectorAttributes": "rawSelector:1:s",
    "NonResourceAttributes": "path:1:s verb:2:s",
    "SubjectAccessReviewSpec": ("resourceAttributes:1:ResourceAttributes nonResourceAttributes:2:NonResourceAttributes "
                                "user:3:s groups:4:*s extra:5:{ExtraValue uid:6:s"),
    "SubjectAccessReviewStatus": "allowed:1:b! denied:4:b reason:2:s evaluationError:3:s",
}


class SubjectAccessReviewStrategy(Strategy):
    group = "authorization.k8s.io"
    kind = "SubjectAccessReview"
    plural = "subjectaccessreviews"
    singular = "subjectaccessreview"
    namespaced = False
    verbs = ("create",)
    model = "V1SubjectAccessReview"
    protobuf_messages = {
        "SubjectAccessReview": "metadata:1:ObjectMeta spec:2:SubjectAccessReviewSpec status:3:SubjectAccessReviewStatus",
        **SPEC_MESSAGES,
    }


STRATEGY = SubjectAccessReviewStrategy()
