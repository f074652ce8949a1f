"""authentication.k8s.io/v1: TokenReview and SelfSubjectReview (create-only; served by apiserver/reviews.py)."""
