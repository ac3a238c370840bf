SELECT *
FROM websession
WHERE coalesce(lower(CAST(`Url` AS STRING)) LIKE lower('%/pwndrop/%') ESCAPE '\\', false);
