"""TokenReview (authentication.k8s.io/v1): "who is this bearer token?", asked by kubelets and webhooks.

Create-only and never stored: ``apiserver/reviews.py`` answers the POST with the authenticator's
verdict. This module holds the type facts (discovery, OpenAPI, kubectl's protobuf bodies).
"""

from __future__ import annotations

from ..base import Strategy

USER_INFO = "username:1:s uid:2:s groups:3:*s extra:4:{ExtraValue"


class TokenReviewStrategy(Strategy):
    group = "authentication.k8s.io"
    kind = "TokenReview"
    plural = "tokenreviews"
    singular = "tokenreview"
    namespaced = False
    verbs = ("create",)
    model = "V1TokenReview"
    protobuf_messages = {
        "TokenReview": "metadata:1:ObjectMeta spec:2:TokenReviewSpec status:3:TokenReviewStatus",
        "TokenReviewSpec": "token:1:s audiences:2:*s",
        "TokenReviewStatus": "authenticated:1:b user:2:UserInfo audiences:4:*s error:3:s",
        "UserInfo": USER_INFO,
        "ExtraValue": "items:1:*s",
    }


STRATEGY = TokenReviewStrategy()
