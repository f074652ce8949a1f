"""authorization.k8s.io/v1: the SubjectAccessReview family (create-only; served by apiserver/reviews.py)."""
