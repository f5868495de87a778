"""BFCL-style evaluation on the official BFCL v4 data (read from the installed `bfcl-eval` package).

data (questions, answers, categories) -> generate (model runs through datagen.llm) -> result files
in BFCL's layout -> decode + ast_checker / multi_turn -> scoring (per category, v3 and v4 overall)
-> results (CSVs, markdown, verdicts). `official` calls the official checker for the agreement
test and the speed benchmark only.
"""
