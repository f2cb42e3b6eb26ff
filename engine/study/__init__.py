"""Studies: many variants of one experiment, trained, measured and compared from one file.

Public API: :func:`load_study` (validated :class:`StudyConfig`), :func:`run_study` (every missing
step, resumable), :func:`write_summary` (``summary.csv``), :func:`write_report` (``report.html``).
"""

from engine.study.measures import FlatnessOptions, measure_flatness
from engine.study.report import write_report
from engine.study.runner import STEPS, StudyOutcome, planned_steps, run_study, step_file
from engine.study.spec import StudyConfig, Variant, bundled_studies, load_study, resolve_study, study_from_dict
from engine.study.summary import summary_columns, summary_rows, write_summary

__all__ = [
    "STEPS", "FlatnessOptions", "StudyConfig", "StudyOutcome", "Variant", "bundled_studies", "load_study",
    "measure_flatness", "planned_steps", "resolve_study", "run_study", "step_file", "study_from_dict",
    "summary_columns", "summary_rows", "write_report", "write_summary",
]
