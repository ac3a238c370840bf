SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%rclone/%') ESCAPE '\\' AND (lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%-DEV%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%-beta.%') ESCAPE '\\'), false);
