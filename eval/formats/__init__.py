"""The format corpus: the NorQuAD texts as PDF, Word, OpenDocument, web pages, Markdown and text.

``make`` builds it (with its gold file) from ``/work/shared/norquad-validation``; ``check``
checks a ``qa eval`` run on it: the cited PDF pages hold the answer (against ``pdftotext``),
every citation is exact, and no header, footer, navigation or cookie text was indexed.
"""
