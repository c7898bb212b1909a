"""Feedback: the feedback type, its list and its writes (submit, status)."""

from schema.areas import Area
from schema.feedback.mutations import FeedbackMutations
from schema.feedback.queries import FeedbackQueries

AREA = Area(position=20, queries=(FeedbackQueries,), mutations=(FeedbackMutations,))
