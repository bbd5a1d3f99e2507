from celery import shared_task

from jobs import recovery


@shared_task(ignore_result=True)
def recover_abandoned_jobs():
    return recovery.recover_abandoned_jobs()
