"""How many items one request of each operation the collectors call returns at most.

Per (boto3 service, API operation): from every described type (its list call's page size, its
batch describe and batch tag calls' sizes) and, where the collectors' data does not say it, from
``FIXED_PAGES`` (AWS API references). ``make bench`` and the end-to-end test hold the requests of
an inventory against the fewest these allow.
"""

from __future__ import annotations

from functools import cache

# Items one request returns at most, per (boto3 service, operation), where the collectors' own
# data does not say it (``page_maxima``): operations of hand-written collectors, and list calls
# that take no page size because the service pages by itself (AWS API references). An operation
# not listed anywhere takes one item per request or is one request per call.
FIXED_PAGES: dict[tuple[str, str], int] = {
    ("ec2", "DescribeInstances"): 1000,  # MaxResults 5-1000
    ("rds", "DescribeDBInstances"): 100,  # MaxRecords 20-100
    ("lambda", "ListFunctions"): 50,  # MaxItems 1-50
    ("ecs", "ListClusters"): 100,  # maxResults 1-100
    ("ecs", "ListServices"): 100,  # maxResults 1-100
    ("ecs", "DescribeServices"): 10,  # services 1-10 per request
    ("resourcegroupstaggingapi", "GetResources"): 100,  # ResourcesPerPage 1-100
    ("s3", "ListBuckets"): 10000,  # MaxBuckets 1-10000
    ("eks", "ListClusters"): 100,
    ("eks", "ListNodegroups"): 100,
    ("kms", "ListKeys"): 1000,
    ("kms", "ListAliases"): 100,
    ("events", "ListEventBuses"): 100,
    ("events", "ListRules"): 100,
    ("firehose", "ListDeliveryStreams"): 10000,
    ("sns", "ListTopics"): 100,  # pages by itself
    ("emr", "ListClusters"): 50,  # pages by itself
    ("codebuild", "ListProjects"): 100,  # pages by itself
    ("route53", "ListHostedZones"): 100,  # MaxItems, a string, 100 at most
    ("cloudfront", "ListDistributions"): 100,  # MaxItems, a string, 100 at most
    ("organizations", "ListRoots"): 20,  # MaxResults 1-20 (the organisation task's walk)
    ("organizations", "ListAccountsForParent"): 20,
    ("organizations", "ListOrganizationalUnitsForParent"): 20,
    ("account", "ListRegions"): 50,  # MaxResults 1-50 (the organisation task's region discovery)
}


@cache
def page_maxima() -> dict[tuple[str, str], int]:
    """Items per request at most, per (boto3 service, API operation): from every described type
    (its list call's page size, its batch describe and batch tag calls' sizes) and FIXED_PAGES."""
    import botocore.session

    from tag_compliance.aws.collectors import all_collectors
    from tag_compliance.aws.collectors.described import BatchTags, DescribedType
    from tag_compliance.aws.collectors.elasticloadbalancing import LoadBalancerCollector

    session = botocore.session.get_session()

    def api_name(service: str, method: str) -> str:
        model = session.get_service_model(service)
        return next(name for name in model.operation_names if botocore.xform_name(name) == method)

    described = [c for c in all_collectors() if isinstance(c, DescribedType)] + list(
        LoadBalancerCollector.APIS
    )
    maxima = dict(FIXED_PAGES)
    for kind in described:
        service = kind.boto_service
        if kind.page_size:
            maxima[(service, api_name(service, kind.operation))] = kind.page_size
        if kind.details is not None:
            maxima[(service, api_name(service, kind.details.operation))] = kind.details.batch
        if isinstance(kind.tags, BatchTags):
            maxima[(service, api_name(service, kind.tags.operation))] = kind.tags.batch
    return maxima
