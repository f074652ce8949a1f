"""SelfSubjectRulesReview (authorization.k8s.io/v1): "what may I do here?" (``kubectl auth can-i --list``).

Create-only and never stored: ``apiserver/reviews.py`` asks the authorizers that can list rules.
"""

from __future__ import annotations

from ..base import Strategy


class SelfSubjectRulesReviewStrategy(Strategy):
    group = "authorization.k8s.io"
    kind = "SelfSubjectRulesReview"
    plural = "selfsubjectrulesreviews"
    singular = "selfsubjectrulesreview"
    namespaced = False
    verbs = ("create",)
    model = "V1SelfSubjectRulesReview"
    protobuf_messages = {
        "SelfSubjectRulesReview": ("metadata:1:ObjectMeta spec:2:SelfSubjectRulesReviewSpec "
                                   "status:3:SubjectRulesReviewStatus"),
        "SelfSubjectRulesReviewSpec": "namespace:1:s",
        "SubjectRulesReviewStatus": ("resourceRules:1:*ResourceRule nonResourceRules:2:*NonResourceRule "
                                     "incomplete:3:b! evaluationError:4:s"),
        "ResourceRule": "verbs:1:*s apiGroups:2:*s resources:3:*s resourceNames:4:*s",
        "NonResourceRule": "verbs:1:*s nonResourceURLs:2:*s",
    }


STRATEGY = SelfSubjectRulesReviewStrategy()
