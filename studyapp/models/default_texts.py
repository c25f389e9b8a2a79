"""Default participant-facing texts for a new study, shaped like a research-ethics information sheet.

The consent and debrief defaults name what an ethics board expects to see (who runs the study
and how to reach them, purpose, what taking part involves, pay, data use, the right to
withdraw). Parts only the researcher knows are ``[Placeholders]``: the launch checklist
(:mod:`studyapp.launch`) refuses to open a study while any are left. The estimated duration is
added to the consent page automatically, from the design.
"""

CONSENT = """\
Who runs this study: [Institution], [Research group]. Contact: [Researcher name], [email address].

Purpose: we compare ways of recommending fashion items from a short description of what you \
are looking for. We evaluate the recommender systems, not you.

What you will do: pick a few items you like, type a few short requests, and rate how well the \
recommended items match each request. At the end there are a few short questions.

Pay: [Payment, e.g. £2.50 via Prolific].

Your data: we store your ratings, your requests, the items you picked, the time you took and \
your platform id. We publish only anonymous results; the data is kept for [retention period] \
and used for research only. Please do not type personal information into your requests.

Taking part is voluntary. You may stop at any time without giving a reason; to withdraw your \
data afterwards, contact us with your platform id. Ethics approval: [approval reference].

By clicking "I agree" you confirm that you are 18 or older and agree to take part."""

INSTRUCTIONS = (
    "Type what you are looking for, as you would ask a shop assistant. You will see two lists of "
    "recommendations; rate how well each item matches your request."
)

DEBRIEF = """\
This study compared recommender systems that take both your request and the items you picked \
into account. The lists you saw came from different systems, shown in a random order so that \
nobody (including you) could tell which was which.

Questions, or want to withdraw your data? Contact [Researcher name], [email address], \
[Institution]."""
