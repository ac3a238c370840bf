SELECT *
FROM websession
WHERE coalesce(CAST(`Url` AS STRING) rlike '-[a-z0-9]{3}\\.[a-z0-9-]{3,}-s-account\\.workers\\.dev|\\.up\\.railway\\.app', false);
