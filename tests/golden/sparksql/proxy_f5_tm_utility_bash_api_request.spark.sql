SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpRequestMethod` AS STRING)) = lower('POST') AND lower(CAST(`Url` AS STRING)) LIKE lower('%/mgmt/tm/util/bash') ESCAPE '\\', false);
