"""junit.xml: one test case per check (and per health warning), for CI dashboards."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from auditor.results import Results


def junit_xml(results: Results, fail_on: str = "error") -> str:
    """A JUnit XML document for the run's checks (failed explainers as errors, health
    warnings as test cases: failures with ``fail_on="warning"``, else a note; a skipped
    baseline check as ``<skipped message=...>``)."""
    suite = ET.Element(
        "testsuite",
        name=results.name,
        tests=str(len(results.checks)),
        timestamp=results.provenance.started,
        time=f"{results.provenance.seconds:.3f}",
    )
    failures = errors = skipped = 0
    for check in results.checks:
        case = ET.SubElement(suite, "testcase", classname=results.name, name=check.name)
        blocking = check.severity == "error" or fail_on == "warning"
        message = f"{check.reason} (threshold: {check.threshold})"
        if check.status == "skipped":  # a baseline check without a baseline run
            ET.SubElement(case, "skipped", message=check.reason)
            skipped += 1
        elif check.status == "fail" and blocking:
            ET.SubElement(case, "failure", message=message, type="check_failed").text = message
            failures += 1
        elif check.status == "error" and blocking:
            ET.SubElement(case, "error", message=message, type="check_error").text = message
            errors += 1
        elif check.status != "pass":
            ET.SubElement(case, "system-out").text = f"warning: {message}"
    for result in results.explainers.values():
        if result.status == "failed":
            case = ET.SubElement(
                suite, "testcase", classname=results.name, name=f"explainer {result.id}"
            )
            ET.SubElement(
                case, "error", message=result.error or "", type="explainer_failed"
            ).text = result.traceback or result.error or ""
            errors += 1
    for problem in results.problems:  # the run failed beyond one explainer or check
        case = ET.SubElement(suite, "testcase", classname=results.name, name="run")
        ET.SubElement(case, "error", message=problem, type="run_failed").text = problem
        errors += 1
    for warning in results.warnings:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=results.name,
            name=f"health {warning.code} {warning.subject}",
        )
        message = f"{warning.message}; {warning.action}"
        if fail_on == "warning":
            ET.SubElement(case, "failure", message=message, type="health_warning").text = message
            failures += 1
        else:
            ET.SubElement(case, "system-out").text = f"warning: {message}"
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    if skipped:
        suite.set("skipped", str(skipped))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
